import numpy as np
import pytest

from mtsyn_tf.metrics.classification import (
    voc_average_precision,
    voc_labels_to_masks,
    voc_mean_average_precision,
)

# Ranked: +, -, +, -, + (3 positives). Precision at the hits: 1, 2/3, 3/5.
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
LABELS = np.array([1, 0, 1, 0, 1])


def test_voc07_11point_hand_case():
    # Recall 1/3 at rank 1 (P=1), 2/3 at rank 3 (P=2/3), 1 at rank 5 (P=3/5).
    # Levels 0..0.3 -> max P over recall >= t = 1 (4 levels); 0.4..0.6 -> 2/3 (3 levels);
    # 0.7..1.0 -> 3/5 (4 levels).
    result = voc_average_precision(SCORES, LABELS, convention="voc07_11point")
    assert result["convention"] == "voc07_11point"
    assert result["num_positives"] == 3
    assert result["ap"] == pytest.approx((4 * 1 + 3 * 2 / 3 + 4 * 3 / 5) / 11)


def test_voc10_area_hand_case():
    result = voc_average_precision(SCORES, LABELS, convention="voc10_area")
    assert result["convention"] == "voc10_area"
    assert result["ap"] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)


def test_interpolation_makes_precision_monotone():
    # Ranked: +, -, -, +, + : raw precision at rank 4 is 1/2, at rank 5 it is 3/5; the
    # interpolated precision at recall 2/3 is therefore 3/5.
    scores = np.array([5, 4, 3, 2, 1.0])
    labels = np.array([1, 0, 0, 1, 1])
    ap = voc_average_precision(scores, labels, convention="voc10_area")["ap"]
    assert ap == pytest.approx((1 + 3 / 5 + 3 / 5) / 3)


def test_difficult_images_are_ignored():
    scores = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5])
    labels = np.array([0, 1, 0, 1, 0, 1])
    difficult = np.array([True, False, False, False, False, False])
    with_difficult = voc_average_precision(scores, labels, difficult, convention="voc10_area")
    without = voc_average_precision(scores[1:], labels[1:], convention="voc10_area")
    assert with_difficult["ap"] == pytest.approx(without["ap"])
    assert with_difficult["ap"] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    labels01, diff = voc_labels_to_masks(np.array([1, -1, 0]))
    np.testing.assert_array_equal(labels01, [True, False, False])
    np.testing.assert_array_equal(diff, [False, False, True])


def test_against_sklearn_for_distinct_scores():
    # For distinct scores the VOC2010 AP equals the area under the interpolated curve,
    # which is >= sklearn's non-interpolated AP and equal when precision is monotone.
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    scores = rng.random(200)
    labels = (rng.random(200) < 0.3).astype(int)
    voc10 = voc_average_precision(scores, labels, convention="voc10_area")["ap"]
    assert voc10 >= average_precision_score(labels, scores) - 1e-12
    sorted_scores = np.arange(10.0)[::-1]
    monotone_labels = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0])
    assert voc_average_precision(sorted_scores, monotone_labels, convention="voc10_area")[
        "ap"
    ] == pytest.approx(average_precision_score(monotone_labels, sorted_scores))


def test_perfect_and_map():
    scores = np.stack([SCORES, LABELS + 0.1 * SCORES], axis=1)
    labels = np.stack([LABELS, LABELS], axis=1)
    result = voc_mean_average_precision(scores, labels, convention="voc07_11point")
    assert result["per_class_ap"][1] == pytest.approx(1.0)
    assert result["map"] == pytest.approx((voc_average_precision(SCORES, LABELS)["ap"] + 1.0) / 2)
    assert result["convention"] == "voc07_11point"


def test_no_positive_is_nan_and_errors():
    assert np.isnan(voc_average_precision(SCORES, np.zeros(5, int))["ap"])
    with pytest.raises(ValueError, match="convention"):
        voc_average_precision(SCORES, LABELS, convention="coco")
    with pytest.raises(ValueError, match="same length"):
        voc_average_precision(SCORES, LABELS[:3])
    with pytest.raises(ValueError, match="0/1"):
        voc_average_precision(SCORES, LABELS - 1)
    with pytest.raises(ValueError, match="non-finite"):
        voc_average_precision(np.array([np.nan, 1.0]), np.array([1, 0]))
