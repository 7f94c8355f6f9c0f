import numpy as np
import pytest

from mtsyn_tf.metrics.detection import box_iou, detection_average_precision, voc_detection_map

GT = np.array([[1, 1, 10, 10], [21, 21, 40, 30]], float)  # areas 100 and 200 (inclusive)


def _ap(dets, gts, convention="voc07_11point"):
    return detection_average_precision(dets, gts, convention)["ap"]


def test_box_iou_counts_inclusive_pixels():
    # [1, 1, 10, 10] vs [1, 1, 10, 5]: 50 of 100 pixels.
    np.testing.assert_allclose(box_iou(GT[:1], [1, 1, 10, 5]), [0.5])
    np.testing.assert_allclose(box_iou(GT, [100, 100, 110, 110]), [0.0, 0.0])


@pytest.mark.parametrize("convention", ["voc07_11point", "voc10_area"])
def test_perfect_detections_have_ap_one(convention):
    dets = [(GT, [0.9, 0.8]), (GT[:1], [0.7])]
    gts = [(GT, [False, False]), (GT[:1], [False])]
    assert _ap(dets, gts, convention) == pytest.approx(1.0)


def test_duplicate_detection_is_a_false_positive():
    # Ranked: TP, FP (duplicate of the same box), TP. Precision 1, 1/2, 2/3; recall 1/2, 1/2, 1.
    dets = [(np.stack([GT[0], GT[0], GT[1]]), [0.9, 0.8, 0.7])]
    gts = [(GT, [False, False])]
    # 11-point: recall ≤ 0.5 → max precision 1 (6 levels), > 0.5 → 2/3 (5 levels).
    assert _ap(dets, gts) == pytest.approx((6 * 1.0 + 5 * 2 / 3) / 11)
    # area: 0.5 · 1 + 0.5 · 2/3.
    assert _ap(dets, gts, "voc10_area") == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_matched_difficult_ground_truth_is_ignored():
    # The difficult box's detection ranks first; ignoring it leaves one TP at precision 1.
    dets = [(np.stack([GT[1], GT[0]]), [0.9, 0.5])]
    gts = [(GT, [False, True])]  # GT[0] easy, GT[1] difficult
    r = detection_average_precision(dets, gts, "voc10_area")
    assert r["ap"] == pytest.approx(1.0)
    assert r["num_positives"] == 1 and r["num_detections"] == 1
    # Without that box the same detection is a FP ranked first: precision 1/2 at recall 1.
    assert _ap(dets, [(GT[:1], [False])], "voc10_area") == pytest.approx(0.5)


def test_iou_just_below_half_is_a_miss():
    # [1, 1, 10, 5] overlaps GT[0] by exactly 50/100 (a hit); against the slightly wider
    # [1, 1, 10, 10.1] it overlaps by 50/101 < 0.5 (a miss, AP 0).
    assert _ap([([[1, 1, 10, 5]], [1.0])], [(GT[:1], [False])]) == pytest.approx(1.0)
    wider = np.array([[1, 1, 10, 10.1]])
    assert box_iou(wider, [1, 1, 10, 5])[0] == pytest.approx(50 / 101)
    assert _ap([([[1, 1, 10, 5]], [1.0])], [(wider, [False])]) == 0.0


def test_map_over_classes_with_ground_truth():
    detections = [
        (np.stack([GT[0], GT[1]]), [0.9, 0.8], [0, 1]),
        (np.zeros((0, 4)), [], []),
    ]
    ground_truth = [(GT, [0, 1], [False, False]), (GT[:1], [1], [False])]
    r = voc_detection_map(detections, ground_truth, num_classes=3, convention="voc10_area")
    # class 0: 1/1 found → 1; class 1: 1 of 2 found at precision 1 → 0.5; class 2: no GT.
    assert r["per_class_ap"][:2] == pytest.approx([1.0, 0.5]) and np.isnan(r["per_class_ap"][2])
    assert r["map"] == pytest.approx(0.75) and r["classes_evaluated"] == [0, 1]
    assert r["convention"] == "voc10_area" and r["num_positives"] == [1, 2, 0]


def test_bad_input_raises():
    with pytest.raises(ValueError, match="one entry per image"):
        detection_average_precision([(GT, [1, 1])], [])
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        detection_average_precision([(np.ones((2, 3)), [1, 1])], [(GT, [False, False])])
    with pytest.raises(ValueError, match="convention"):
        detection_average_precision([], [], "coco")
