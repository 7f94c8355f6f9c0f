"""Streaming Keras metrics == the numpy references, eagerly, in graph mode and with XLA."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.metrics.contour_proxy import ContourProxyAccumulator
from mtsyn_tf.metrics.depth import DepthAccumulator
from mtsyn_tf.metrics.keras_metrics import ContourMetrics, DepthMetrics, NormalAngleMetrics
from mtsyn_tf.metrics.normals import NormalAccumulator


def _depth_batches(seed, num=3, shape=(2, 8, 8, 1)):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num):
        gt = rng.uniform(0.5, 8.0, shape).astype(np.float32)
        gt[rng.random(shape) < 0.1] = 0.0  # no geometry
        pred = (gt + rng.normal(0, 0.8, shape)).clip(0.05, None).astype(np.float32)
        valid = (rng.random(shape) > 0.2).astype(np.float32)
        out.append((gt, pred, valid))
    return out


def _normal_batches(seed, num=3, shape=(2, 8, 8)):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num):
        gt = rng.normal(size=shape + (3,))
        gt /= np.linalg.norm(gt, axis=-1, keepdims=True)
        pred = gt + 0.6 * rng.normal(size=gt.shape)
        gt[rng.random(shape) < 0.1] = 0.0
        valid = (rng.random(shape + (1,)) > 0.2).astype(np.float32)
        out.append((gt.astype(np.float32), pred.astype(np.float32), valid))
    return out


def _contour_batches(seed, num=3, shape=(2, 8, 8, 1)):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num):
        gt = (rng.random(shape) < 0.2).astype(np.float32)
        prob = np.clip(0.4 * gt + 0.7 * rng.random(shape), 0, 1).astype(np.float32)
        out.append((gt, prob, None))
    return out


CASES = {
    "depth": (DepthMetrics, _depth_batches, DepthAccumulator, ("abs_rel", "rmse", "delta1")),
    "normals": (
        NormalAngleMetrics,
        _normal_batches,
        lambda: NormalAccumulator(exact_median=True),
        ("mean", "median", "pct_11_25", "pct_22_5", "pct_30"),
    ),
    "contours": (ContourMetrics, _contour_batches, ContourProxyAccumulator, ("f_0_5", "ap")),
}
# Median tolerance is half the 0.1-degree histogram bin; the rest are float32 results.
TOLERANCE = {"median": 0.05 + 1e-4}


def _reference(case, batches):
    _, _, accumulator, names = CASES[case]
    acc = accumulator()
    for gt, pred, valid in batches:
        mask = None if valid is None else valid[..., 0] > 0 if case == "normals" else valid > 0
        acc.update(pred, gt, mask)
    result = acc.result()
    return {name: result[name] for name in names}


def _assert_close(case, got, expected):
    assert set(got) == set(expected), (got, expected)
    for name, value in expected.items():
        atol = TOLERANCE.get(name, 1e-5 * max(1.0, abs(value)))
        assert float(got[name]) == pytest.approx(value, abs=atol), (case, name)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_streaming_matches_numpy(case, mode):
    metric_cls, make_batches, _, _ = CASES[case]
    batches = make_batches(seed=len(mode))
    metric = metric_cls()

    def step(gt, pred, valid):
        metric.update_state(gt, pred, valid)

    if mode != "eager":
        step = tf.function(step, jit_compile=mode == "xla")
    for gt, pred, valid in batches:
        step(gt, pred, valid)
    _assert_close(case, metric.result(), _reference(case, batches))
    # Streaming over batches equals one update with everything concatenated.
    one_shot = metric_cls()
    stacked = [np.concatenate(parts) if parts[0] is not None else None for parts in zip(*batches)]
    one_shot.update_state(*stacked)
    for name, value in metric.result().items():
        assert float(one_shot.result()[name]) == pytest.approx(float(value), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_reset_config_and_empty(case):
    metric_cls, make_batches, _, _ = CASES[case]
    metric = metric_cls(name=f"{case}_m")
    assert all(np.isnan(float(v)) for v in metric.result().values())
    gt, pred, valid = make_batches(seed=0, num=1)[0]
    metric.update_state(gt, pred, valid)
    assert not any(np.isnan(float(v)) for v in metric.result().values())
    metric.reset_state()
    assert all(np.isnan(float(v)) for v in metric.result().values())
    clone = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert type(clone) is metric_cls and clone.get_config() == metric.get_config()


def test_non_finite_prediction_poisons_results():
    gt, pred, valid = _depth_batches(seed=0, num=1)[0]
    metric = DepthMetrics()
    pred = pred.copy()
    pred.flat[np.flatnonzero((valid > 0) & (gt > 0))[0]] = np.nan
    metric.update_state(gt, pred, valid)
    assert all(np.isnan(float(v)) for v in metric.result().values())
    # A NaN on an unscored pixel is ignored.
    metric = DepthMetrics()
    gt = np.array([0.0, 1.0], np.float32)
    metric.update_state(gt, np.array([np.nan, 2.0], np.float32))
    assert float(metric.result()["abs_rel"]) == pytest.approx(1.0)


def test_edge_conventions():
    depth = DepthMetrics()
    depth.update_state(np.array([1.0, 1.0]), np.array([-1.0, 1.1]))
    assert float(depth.result()["delta1"]) == pytest.approx(0.5)  # pred <= 0 fails delta
    normals = NormalAngleMetrics()
    normals.update_state(np.array([[0.0, 0.0, 1.0]]), np.zeros((1, 3)))
    assert float(normals.result()["mean"]) == pytest.approx(90.0)
    with pytest.raises(ValueError, match="bin_degrees"):
        NormalAngleMetrics(bin_degrees=0.0)


def test_shape_mismatch_and_logits_are_reported():
    for metric in (DepthMetrics(), ContourMetrics()):
        with pytest.raises(ValueError, match=r"different shapes: pred \(2, 4\), gt \(2, 3\)"):
            metric.update_state(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="different shapes"):
        NormalAngleMetrics().update_state(np.ones((2, 3)), np.ones((3, 3)))
    contour = ContourMetrics()
    contour.update_state(np.array([0.0, 1.0]), np.array([-2.0, 3.0]))  # logits, not probs
    assert all(np.isnan(float(v)) for v in contour.result().values())
