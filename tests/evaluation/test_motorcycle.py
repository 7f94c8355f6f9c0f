import numpy as np
import pytest

from mtsyn_tf.evaluation.motorcycle import (
    disparity_to_depth,
    motorcycle_depth_metrics,
    motorcycle_ground_truth,
    score_depth,
)


def test_disparity_to_depth_closed_form():
    d = np.array([[0.0, 100.0, np.inf, np.nan]])
    z = disparity_to_depth(d, focal_px=1000.0, baseline_mm=200.0, doffs_px=100.0)
    np.testing.assert_allclose(z, [[2.0, 1.0, 0.0, 0.0]], rtol=1e-6)


def test_motorcycle_ground_truth_is_plausible():
    gt = motorcycle_ground_truth()
    assert gt["image"].shape == (500, 741, 3) and gt["depth"].shape == (500, 741)
    valid = gt["depth"][gt["depth"] > 0]
    assert valid.size > 0.85 * gt["depth"].size
    # Middlebury "Motorcycle": a table-top scene about 1.5-4 m from the rig.
    assert 1.0 < np.median(valid) < 4.0


def test_score_depth_median_scaling_removes_a_global_scale():
    rng = np.random.default_rng(0)
    gt = rng.uniform(1.0, 3.0, (20, 30))
    gt[0, :5] = 0.0  # unknown pixels are not scored
    result = score_depth(2.0 * np.where(gt > 0, gt, 1.0), gt)
    assert result["raw"]["abs_rel"] == pytest.approx(1.0)
    assert result["median_scale_factor"] == pytest.approx(0.5)
    assert result["median_scaled"]["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert result["num_pixels"] == 20 * 30 - 5
    with pytest.raises(ValueError, match="shapes differ"):
        score_depth(gt[:, :5], gt)


def test_model_on_a_known_scene(small_model):
    """A constant-depth scene: the model's median-scaled abs_rel equals its relative spread."""
    sample = {
        "image": np.full((60, 90, 3), 128, np.uint8),
        "depth": np.full((60, 90), 2.0, np.float32),
    }
    r = motorcycle_depth_metrics(small_model, sample=sample)
    pred = r["prediction"]
    assert pred.shape == (60, 60)
    expected = np.mean(np.abs(pred * r["median_scale_factor"] - 2.0) / 2.0)
    assert r["median_scaled"]["abs_rel"] == pytest.approx(expected, rel=1e-3)
    assert r["median_scale_factor"] == pytest.approx(2.0 / np.median(pred), rel=1e-6)
