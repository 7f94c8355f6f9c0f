import numpy as np
import pytest

from mtsyn_tf.metrics.depth import DepthAccumulator, depth_metrics


def _reference(pred, gt):
    """Independent per-pixel formulas on already-selected valid pixels."""
    out = {}
    out["abs_rel"] = np.mean(np.abs(pred - gt) / gt)
    out["sq_rel"] = np.mean((pred - gt) ** 2 / gt)
    out["rmse"] = np.sqrt(np.mean((pred - gt) ** 2))
    out["rmse_log"] = np.sqrt(np.mean((np.log(pred) - np.log(gt)) ** 2))
    out["log10"] = np.mean(np.abs(np.log10(pred / gt)))
    thresh = np.maximum(pred / gt, gt / pred)
    for k in (1, 2, 3):
        out[f"delta{k}"] = np.mean(thresh < 1.25**k)
    d = np.log(pred / gt)
    out["scale_invariant"] = np.var(d)
    return out


def test_hand_computed_case():
    pred = np.array([2.0, 1.0, 3.0, 5.0])
    gt = np.array([1.0, 1.0, 2.0, 9.0])
    mask = np.array([True, True, True, False])
    m = depth_metrics(pred, gt, mask)
    assert m["num_pixels"] == 3
    assert m["abs_rel"] == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    assert m["sq_rel"] == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    assert m["rmse"] == pytest.approx(np.sqrt(2.0 / 3))
    assert m["delta1"] == pytest.approx(1 / 3)  # ratios 2, 1, 1.5
    assert m["delta2"] == pytest.approx(2 / 3)  # 1.5625
    assert m["delta3"] == pytest.approx(2 / 3)  # 1.953: ratio 2 still fails
    d = np.log([2.0, 1.0, 1.5])
    assert m["scale_invariant"] == pytest.approx(np.mean(d**2) - np.mean(d) ** 2)


def test_scale_invariant_ignores_global_scale():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 10, (8, 8))
    m = depth_metrics(3.7 * gt, gt)
    assert m["scale_invariant"] == pytest.approx(0.0, abs=1e-12)
    assert m["rmse_log"] == pytest.approx(np.log(3.7))


def test_random_matches_reference_and_streaming_pools_pixels():
    rng = np.random.default_rng(1)
    preds = [rng.uniform(0.1, 10, (5, 7)) for _ in range(3)]
    gts = [rng.uniform(0.1, 10, (5, 7)) for _ in range(3)]
    masks = [rng.random((5, 7)) > 0.3 for _ in range(3)]
    gts[1][0, 0] = 0.0  # no geometry: excluded even where the mask says valid
    gts[2][1, 1] = np.nan
    masks[1][0, 0] = masks[2][1, 1] = True
    acc = DepthAccumulator()
    for p, g, m in zip(preds, gts, masks):
        acc.update(p, g, m)
    result = acc.result()
    valid = [m & np.isfinite(g) & (np.nan_to_num(g) > 0) for g, m in zip(gts, masks)]
    p_all = np.concatenate([p[v] for p, v in zip(preds, valid)])
    g_all = np.concatenate([g[v] for g, v in zip(gts, valid)])
    expected = _reference(p_all, g_all)
    assert result["num_pixels"] == p_all.size
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, rel=1e-10), key
    # Pooled != mean of per-image means when images have different pixel counts.
    per_image = np.mean([_reference(p[v], g[v])["abs_rel"] for p, g, v in zip(preds, gts, valid)])
    assert abs(per_image - result["abs_rel"]) > 1e-6


def test_all_invalid_gives_nan():
    m = depth_metrics(np.ones((3, 3)), np.zeros((3, 3)))
    assert m["num_pixels"] == 0
    assert all(np.isnan(m[k]) for k in ("abs_rel", "rmse", "delta1", "scale_invariant"))


def test_empty_images_contribute_nothing():
    acc = DepthAccumulator()
    acc.update(np.ones((2, 2)), np.ones((2, 2)), np.zeros((2, 2), bool))
    acc.update(np.full((2, 2), 2.0), np.ones((2, 2)))
    assert acc.result()["abs_rel"] == pytest.approx(1.0)


def test_errors():
    with pytest.raises(ValueError, match=r"different shapes: pred \(2, 3\), gt \(3, 2\)"):
        depth_metrics(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        depth_metrics(np.array([np.nan, 1.0]), np.ones(2))
    with pytest.raises(ValueError, match="> 0"):
        depth_metrics(np.array([0.0, 1.0]), np.ones(2))
    with pytest.raises(ValueError, match="mask must have the shape"):
        depth_metrics(np.ones(2), np.ones(2), np.ones(3, bool))
    # Non-finite predictions on invalid pixels are fine.
    assert depth_metrics(np.array([np.nan, 1.0]), np.array([0.0, 1.0]))["abs_rel"] == 0.0


def test_mask_is_not_modified():
    mask = np.ones(3, bool)
    depth_metrics(np.ones(3), np.array([1.0, 0.0, 1.0]), mask)
    assert mask.all()
