import numpy as np
import pytest

from mtsyn_tf.metrics.contours import (
    BoundaryEvaluator,
    boundary_metrics,
    bsds_average_precision,
    bsds_thresholds,
    image_boundary_counts,
    summarize_boundary_counts,
)


def _shapes_gt(size=100):
    gt = np.zeros((size, size), np.uint8)
    a, b, c, d, e = (int(size * f) for f in (0.05, 0.2, 0.3, 0.5, 0.8))
    gt[b, 2 * a : size - 2 * a] = 1
    gt[c : size - 2 * a, d] = 1
    gt[e, a : d - a] = 1
    return gt


def test_threshold_grid():
    t = bsds_thresholds(99)
    assert t.size == 99 and t[0] == pytest.approx(0.01) and t[49] == pytest.approx(0.5)


def test_perfect_prediction():
    gt = _shapes_gt()
    m = boundary_metrics([gt.astype(float)], [gt])
    assert m["ods"] == pytest.approx(1.0) and m["ois"] == pytest.approx(1.0)
    # A binary map gives a single PR point; BSDS defines AP = 0 for a degenerate curve.
    assert m["ap"] == 0.0


def test_empty_prediction_scores_zero():
    gt = _shapes_gt()
    m = boundary_metrics([np.zeros(gt.shape)], [gt])
    assert m["ods"] == 0.0 and m["ois"] == 0.0 and m["ap"] == 0.0


def test_one_pixel_shift_is_within_tolerance():
    gt = _shapes_gt(100)  # diagonal 141 px -> tolerance 1.06 px
    shifted = np.roll(gt, 1, axis=0).astype(float)
    m = boundary_metrics([shifted], [gt])
    assert m["ods"] == pytest.approx(1.0) and m["ois"] == pytest.approx(1.0)
    # With a small image the tolerance drops below one pixel and the shift is missed.
    small = np.zeros((40, 40), np.uint8)
    small[20, 5:35] = 1
    m_small = boundary_metrics([np.roll(small, 1, axis=0).astype(float)], [small])
    assert m_small["ods"] == 0.0


def test_thick_prediction_is_thinned():
    gt = _shapes_gt()
    thick = np.clip(gt + np.roll(gt, 1, axis=0) + np.roll(gt, 1, axis=1), 0, 1).astype(float)
    thinned = boundary_metrics([thick], [gt])
    raw = boundary_metrics([thick], [gt], thin_predictions=False)
    assert thinned["ods"] > 0.95
    assert raw["ods"] < thinned["ods"]


def test_counts_by_hand_and_multiple_annotators():
    gt1 = np.zeros((10, 10), np.uint8)
    gt1[5, 2:8] = 1  # 6 px
    gt2 = np.zeros((10, 10), np.uint8)
    gt2[2, 2:6] = 1  # 4 px, far from the prediction
    prob = np.zeros((10, 10))
    prob[5, 2:5] = 0.9  # 3 px on gt1
    prob[8, 8] = 0.3  # isolated false positive at low thresholds
    counts = image_boundary_counts(prob, [gt1, gt2], thresholds=[0.2, 0.5], max_dist_fraction=0.0)
    np.testing.assert_array_equal(counts, [[3, 10, 3, 4], [3, 10, 3, 3]])


def test_summary_against_hand_formulas():
    t = np.array([0.25, 0.5, 0.75])
    counts = np.array(
        [
            [[8, 10, 8, 20], [6, 10, 6, 10], [2, 10, 2, 2]],
            [[4, 5, 4, 5], [1, 5, 1, 1], [0, 5, 0, 0]],
        ],
        dtype=float,
    )
    m = summarize_boundary_counts(counts, t, interpolate=False)
    r = np.array([12, 7, 2]) / 15
    p = np.array([12 / 25, 7 / 11, 1.0])
    f = 2 * p * r / (p + r)
    assert m["ods"] == pytest.approx(f.max()) and m["ods_threshold"] == t[np.argmax(f)]
    # OIS: image 1 best at t=0.5 (F=0.6), image 2 best at t=0.25 (F=0.8).
    r_ois, p_ois = (6 + 4) / 15, (6 + 4) / 15
    assert m["ois"] == pytest.approx(2 * p_ois * r_ois / (p_ois + r_ois))
    interpolated = summarize_boundary_counts(counts, t, interpolate=True)
    assert interpolated["ods"] >= m["ods"]
    assert interpolated["ois"] == m["ois"]


def test_bsds_ap_on_a_straight_curve():
    # Precision 1 from recall 0.2 to 0.8: area 0.6 (grid points 0.2..0.8 -> 61 × 0.01).
    assert bsds_average_precision([0.8, 0.5, 0.2], [1.0, 1.0, 1.0]) == pytest.approx(0.61)
    assert bsds_average_precision([0.5, 0.5], [0.2, 0.9]) == 0.0


def test_noisy_predictions_rank_sensibly_and_streaming():
    rng = np.random.default_rng(0)
    gts = [_shapes_gt(64), np.roll(_shapes_gt(64), 7, axis=1)]
    good = [np.clip(g * 0.8 + 0.2 * rng.random(g.shape), 0, 1) for g in gts]
    noise = [rng.random(g.shape) for g in gts]
    m_good = boundary_metrics(good, gts, num_thresholds=19)
    m_noise = boundary_metrics(noise, gts, num_thresholds=19)
    assert m_good["ods"] > 0.9 and m_noise["ods"] < 0.5
    assert m_good["ap"] > m_noise["ap"]
    assert m_good["ois"] > 0.9 and m_noise["ois"] < 0.5
    ev = BoundaryEvaluator(num_thresholds=19)
    for p, g in zip(good, gts):
        ev.update(p, g)
    assert ev.result()["ods"] == m_good["ods"]


def test_errors():
    gt = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match="different shapes"):
        boundary_metrics([np.zeros((8, 9))], [gt])
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        boundary_metrics([np.full((8, 8), 3.0)], [gt])
    with pytest.raises(ValueError, match="non-finite"):
        boundary_metrics([np.full((8, 8), np.nan)], [gt])
    with pytest.raises(ValueError, match="0/1"):
        boundary_metrics([np.zeros((8, 8))], [gt + 2])
    assert np.isnan(BoundaryEvaluator().result()["ods"])
