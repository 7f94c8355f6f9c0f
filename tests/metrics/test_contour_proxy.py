import numpy as np
import pytest

from mtsyn_tf.metrics.contour_proxy import (
    ContourProxyAccumulator,
    contour_proxy_metrics,
    proxy_thresholds,
)


def test_hand_case():
    gt = np.array([1, 1, 0, 0])
    prob = np.array([0.9, 0.4, 0.6, 0.1])
    m = contour_proxy_metrics(prob, gt)
    # At 0.5: TP 1, FP 1, FN 1 -> P = R = F = 0.5.
    assert m["f_0_5"] == pytest.approx(0.5)
    assert m["precision_0_5"] == pytest.approx(0.5) and m["recall_0_5"] == pytest.approx(0.5)
    # Curve: t <= 0.1: R 1, P 0.5 (all four positive); 0.1 < t <= 0.4: R 1, P 2/3;
    # 0.4 < t <= 0.6: R 1/2, P 1/2; 0.6 < t <= 0.9: R 1/2, P 1.
    # Step AP = 1/2 * 1 (recall 0 -> 1/2 at precision 1) + 1/2 * 2/3.
    assert m["ap"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert m["best_f"] == pytest.approx(0.8)


def test_matches_sklearn_average_precision_on_quantised_scores():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    acc = ContourProxyAccumulator()
    probs, gts = [], []
    for _ in range(3):
        gt = (rng.random((2, 9, 9)) < 0.2).astype(np.uint8)
        prob = np.clip(0.5 * gt + 0.6 * rng.random(gt.shape), 0.01, 1.0)
        acc.update(prob, gt)
        probs.append(prob.ravel())
        gts.append(gt.ravel())
    p, g = np.concatenate(probs), np.concatenate(gts)
    t = proxy_thresholds()
    quantised = t[np.searchsorted(t, p.astype(np.float32), side="right") - 1]
    assert acc.result()["ap"] == pytest.approx(average_precision_score(g, quantised))
    assert acc.result()["num_pixels"] == p.size


def test_perfect_empty_and_errors():
    gt = np.zeros((4, 4), np.uint8)
    gt[1] = 1
    perfect = contour_proxy_metrics(gt.astype(float), gt)
    assert perfect["f_0_5"] == 1.0 and perfect["ap"] == pytest.approx(1.0)
    assert contour_proxy_metrics(np.zeros((4, 4)), gt)["f_0_5"] == 0.0
    assert np.isnan(contour_proxy_metrics(gt, gt, np.zeros((4, 4), bool))["ap"])
    with pytest.raises(ValueError, match="different shapes"):
        contour_proxy_metrics(np.zeros((4, 3)), gt)
    with pytest.raises(ValueError, match="sigmoid"):
        contour_proxy_metrics(gt * 5.0, gt)
    with pytest.raises(ValueError, match="non-finite"):
        contour_proxy_metrics(np.full((4, 4), np.nan), gt)
