import numpy as np
import pytest

from mtsyn_tf.metrics.normals import NormalAccumulator, angular_error_degrees, normal_metrics


def _random_normals(rng, shape):
    v = rng.normal(size=shape + (3,))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_hand_angles():
    gt = np.array([[0, 0, -1.0], [0, 0, -1.0], [1.0, 0, 0], [0, 1.0, 0]])
    pred = np.array([[0, 0, -5.0], [1.0, 0, -1.0], [0, 0, 1.0], [0, -2.0, 0]])
    np.testing.assert_allclose(angular_error_degrees(pred, gt), [0, 45, 90, 180], atol=1e-12)
    m = normal_metrics(pred, gt)
    assert m["mean"] == pytest.approx(315 / 4)
    assert m["median"] == pytest.approx(67.5)
    assert m["rmse"] == pytest.approx(np.sqrt((45**2 + 90**2 + 180**2) / 4))
    assert m["pct_11_25"] == pytest.approx(25.0)
    assert m["pct_30"] == pytest.approx(25.0)


def test_tiny_angles_are_accurate():
    gt = np.array([[0.0, 0.0, 1.0]])
    pred = np.array([[np.tan(np.radians(1e-5)), 0.0, 1.0]])
    assert angular_error_degrees(pred, gt)[0] == pytest.approx(1e-5, rel=1e-6)


def test_streaming_matches_arccos_reference_and_histogram_median_bound():
    rng = np.random.default_rng(0)
    acc_hist = NormalAccumulator(bin_degrees=0.01)
    acc_exact = NormalAccumulator(exact_median=True)
    all_angles = []
    for _ in range(3):
        gt = _random_normals(rng, (6, 5))
        pred = gt + 0.5 * rng.normal(size=gt.shape)  # unnormalised predictions
        gt[0, 0] = 0.0  # no geometry
        mask = rng.random((6, 5)) > 0.2
        acc_hist.update(pred, gt, mask)
        acc_exact.update(pred, gt, mask)
        valid = mask & (np.linalg.norm(gt, axis=-1) > 0)
        p = pred[valid] / np.linalg.norm(pred[valid], axis=-1, keepdims=True)
        g = gt[valid]
        all_angles.append(np.degrees(np.arccos(np.clip(np.sum(p * g, -1), -1, 1))))
    a = np.concatenate(all_angles)
    hist, exact = acc_hist.result(), acc_exact.result()
    assert exact["num_pixels"] == a.size
    assert exact["mean"] == pytest.approx(a.mean(), rel=1e-9)
    assert exact["median"] == pytest.approx(np.median(a), rel=1e-9)
    assert exact["rmse"] == pytest.approx(np.sqrt(np.mean(a**2)), rel=1e-9)
    for key, t in (("pct_11_25", 11.25), ("pct_22_5", 22.5), ("pct_30", 30.0)):
        assert exact[key] == pytest.approx(100 * np.mean(a < t))
        assert hist[key] == exact[key]
    assert abs(hist["median"] - np.median(a)) <= 0.005 + 1e-9


def test_all_invalid_nan_and_errors():
    m = normal_metrics(np.ones((2, 3)), np.zeros((2, 3)))
    assert m["num_pixels"] == 0 and np.isnan(m["mean"]) and np.isnan(m["median"])
    with pytest.raises(ValueError, match="different shapes"):
        normal_metrics(np.ones((2, 3)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="last axis of size 3"):
        normal_metrics(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        normal_metrics(np.array([[np.inf, 0, 1.0]]), np.array([[0, 0, 1.0]]))
    with pytest.raises(ValueError, match="zero vector"):
        normal_metrics(np.zeros((1, 3)), np.array([[0, 0, 1.0]]))
