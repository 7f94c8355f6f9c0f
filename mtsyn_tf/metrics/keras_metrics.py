"""Streaming Keras metrics for the trainer's ``test_step`` (TensorFlow backend).

Each metric accumulates float64 sums/counts in ``add_variable`` variables (on-read
synchronised, SUM-aggregated), so it works eagerly, inside ``tf.function`` (also with
``jit_compile=True``: only static shapes, ``unsorted_segment_sum`` instead of boolean
masking) and per replica under ``tf.distribute.MirroredStrategy``, where reading the
result sums the replicas' counts. ``result()`` returns a dict of named float32 scalars.

They follow ``keras.metrics.Metric``'s ``update_state(y_true, y_pred, sample_weight)``
so that ``model.compile(metrics=...)`` can use them too; ``sample_weight`` is the
**valid mask** (nonzero = scored pixel), broadcast against the per-pixel values.
With no scored pixel the results are NaN, like the numpy references in
``depth.py`` / ``normals.py`` / ``contour_proxy.py`` that the tests compare against.
Mismatched static shapes raise ``ValueError`` at trace time. Unlike the numpy
references, a graph cannot raise readable errors on *values*, so an invalid prediction
on a scored pixel (non-finite; for contours also outside [0, 1], e.g. logits passed by
mistake) makes *every* result of that metric NaN until ``reset_state()`` — visible,
never silently averaged away. A depth prediction <= 0 counts as failing δ < 1.25, and a
zero normal prediction scores 90°.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from mtsyn_tf.metrics.contour_proxy import proxy_thresholds

_ACC_DTYPE = tf.float64


def _valid_mask(sample_weight, reference_shape) -> tf.Tensor:
    """Bool mask of ``reference_shape`` from an optional weight/mask (nonzero = valid)."""
    if sample_weight is None:
        return tf.ones(reference_shape, dtype=tf.bool)
    mask = tf.convert_to_tensor(sample_weight)
    if mask.dtype != tf.bool:
        mask = tf.not_equal(mask, tf.zeros((), mask.dtype))
    return tf.broadcast_to(mask, reference_shape)


def _masked_sum(values, valid) -> tf.Tensor:
    """Sum of ``values`` where ``valid``, in float64; ``where`` keeps NaNs off masked pixels."""
    values = tf.cast(values, _ACC_DTYPE)
    return tf.reduce_sum(tf.where(valid, values, tf.zeros_like(values)))


def _nan_if_empty(numerator, count) -> tf.Tensor:
    nan = tf.constant(float("nan"), _ACC_DTYPE)
    return tf.where(count > 0, numerator / tf.maximum(count, 1.0), nan)


def _check_shapes(gt, pred) -> None:
    """Trace-time check of static shapes (unknown dimensions pass)."""
    if not gt.shape.is_compatible_with(pred.shape):
        raise ValueError(
            "predictions and ground truth of different shapes: "
            f"pred {tuple(pred.shape)}, gt {tuple(gt.shape)}"
        )


class _PooledMetric(keras.metrics.Metric):
    """Shared bookkeeping: a count of invalid predictions that poisons all results."""

    def __init__(self, name, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.num_invalid = self.add_variable((), "zeros", dtype="float64", name="num_invalid")

    def _track_invalid(self, pred, valid, in_range=None):
        ok = tf.math.is_finite(pred)
        if in_range is not None:
            ok &= in_range
        if ok.shape.rank == valid.shape.rank + 1:  # vector predictions, e.g. normals
            ok = tf.reduce_all(ok, axis=-1)
        self.num_invalid.assign_add(_masked_sum(tf.cast(~ok, tf.float32), valid))

    def _finalize(self, results: dict) -> dict:
        nan = tf.constant(float("nan"), _ACC_DTYPE)
        return {
            key: tf.cast(tf.where(self.num_invalid > 0, nan, value), tf.float32)
            for key, value in results.items()
        }


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class DepthMetrics(_PooledMetric):
    """Pooled ``abs_rel``, ``rmse`` and ``delta1`` of depth in metres (see ``depth.py``).

    ``update_state(gt_depth, pred_depth, valid_mask)``; scored pixels are
    ``valid_mask & isfinite(gt) & gt > 0``.
    """

    def __init__(self, name: str = "depth_metrics", dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.count = self.add_variable((), "zeros", dtype="float64", name="count")
        self.abs_rel_sum = self.add_variable((), "zeros", dtype="float64", name="abs_rel_sum")
        self.sq_err_sum = self.add_variable((), "zeros", dtype="float64", name="sq_err_sum")
        self.delta1_count = self.add_variable((), "zeros", dtype="float64", name="delta1_count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        gt = tf.cast(y_true, tf.float32)
        pred = tf.cast(y_pred, tf.float32)
        _check_shapes(gt, pred)
        valid = _valid_mask(sample_weight, tf.shape(gt))
        valid = valid & tf.math.is_finite(gt) & (gt > 0)
        self._track_invalid(pred, valid)
        safe_gt = tf.where(valid, gt, tf.ones_like(gt))
        ratio = tf.maximum(pred / safe_gt, safe_gt / pred)
        good = tf.where(pred > 0, tf.cast(ratio < 1.25, tf.float32), tf.zeros_like(pred))
        self.count.assign_add(_masked_sum(tf.ones_like(gt), valid))
        self.abs_rel_sum.assign_add(_masked_sum(tf.abs(pred - gt) / safe_gt, valid))
        self.sq_err_sum.assign_add(_masked_sum(tf.square(pred - gt), valid))
        self.delta1_count.assign_add(_masked_sum(good, valid))

    def result(self):
        return self._finalize(
            {
                "abs_rel": _nan_if_empty(self.abs_rel_sum, self.count),
                "rmse": tf.sqrt(_nan_if_empty(self.sq_err_sum, self.count)),
                "delta1": _nan_if_empty(self.delta1_count, self.count),
            }
        )


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class NormalAngleMetrics(_PooledMetric):
    """Pooled angular errors: ``mean``, ``median``, ``pct_11_25``, ``pct_22_5``, ``pct_30``.

    ``update_state(gt_normals, pred_normals, valid_mask)`` with ``[..., 3]`` normals
    (normalised here) and a mask of shape ``[...]`` or ``[..., 1]``; scored pixels also
    need a finite non-zero ground-truth normal. Mean and percentages are exact pooled
    values; the median comes from a histogram of ``bin_degrees``-wide bins over
    [0°, 180°] (default 0.1°, 1800 bins) with the middle order statistics replaced by
    their bin centres, so it is within ``bin_degrees / 2`` of the exact pooled median.
    """

    def __init__(
        self, bin_degrees: float = 0.1, name: str = "normal_metrics", dtype=None, **kwargs
    ):
        super().__init__(name=name, dtype=dtype, **kwargs)
        if not 0.0 < bin_degrees <= 180.0:
            raise ValueError(
                f"bin_degrees must be in (0, 180]. Received: bin_degrees={bin_degrees}"
            )
        self.bin_degrees = float(bin_degrees)
        self.num_bins = int(np.ceil(180.0 / self.bin_degrees))
        self.count = self.add_variable((), "zeros", dtype="float64", name="count")
        self.angle_sum = self.add_variable((), "zeros", dtype="float64", name="angle_sum")
        self.below = self.add_variable((3,), "zeros", dtype="float64", name="below_thresholds")
        self.histogram = self.add_variable(
            (self.num_bins,), "zeros", dtype="float64", name="histogram"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        gt = tf.cast(y_true, tf.float32)
        pred = tf.cast(y_pred, tf.float32)
        _check_shapes(gt, pred)
        pixel_shape = tf.shape(gt)[:-1]
        if sample_weight is not None:
            sample_weight = tf.convert_to_tensor(sample_weight)
            if sample_weight.shape.rank == gt.shape.rank:
                sample_weight = sample_weight[..., 0]
        gt_norm = tf.norm(gt, axis=-1)
        valid = _valid_mask(sample_weight, pixel_shape)
        valid = valid & tf.reduce_all(tf.math.is_finite(gt), axis=-1) & (gt_norm > 0)
        self._track_invalid(pred, valid)
        unit_gt = tf.math.l2_normalize(gt, axis=-1)
        unit_pred = tf.math.l2_normalize(pred, axis=-1)
        cross = tf.norm(tf.linalg.cross(unit_pred, unit_gt), axis=-1)
        dot = tf.reduce_sum(unit_pred * unit_gt, axis=-1)
        angles = tf.atan2(cross, dot) * (180.0 / np.pi)
        # A zero prediction has no direction: score it as orthogonal (atan2(0, 0) is 0).
        angles = tf.where(tf.norm(pred, axis=-1) > 0, angles, tf.fill(tf.shape(angles), 90.0))
        self.count.assign_add(_masked_sum(tf.ones_like(angles), valid))
        self.angle_sum.assign_add(_masked_sum(angles, valid))
        self.below.assign_add(
            tf.stack(
                [_masked_sum(tf.cast(angles < t, tf.float32), valid) for t in (11.25, 22.5, 30.0)]
            )
        )
        bins = tf.cast(tf.floor(angles / self.bin_degrees), tf.int32)
        bins = tf.clip_by_value(bins, 0, self.num_bins - 1)
        weights = tf.cast(valid, _ACC_DTYPE)
        self.histogram.assign_add(
            tf.math.unsorted_segment_sum(
                tf.reshape(weights, [-1]), tf.reshape(bins, [-1]), self.num_bins
            )
        )

    def _median(self):
        n = self.count
        cumulative = tf.cumsum(self.histogram)
        ranks = tf.stack([tf.floor((n - 1.0) / 2.0), tf.floor(n / 2.0)])  # 0-based middles
        bins = tf.searchsorted(cumulative[None], ranks[None], side="right")[0]
        centre = (tf.cast(tf.reduce_sum(bins), _ACC_DTYPE) + 1.0) * 0.5 * self.bin_degrees
        return tf.where(n > 0, centre, tf.constant(float("nan"), _ACC_DTYPE))

    def result(self):
        pct = 100.0 * _nan_if_empty(self.below, self.count)
        return self._finalize(
            {
                "mean": _nan_if_empty(self.angle_sum, self.count),
                "median": self._median(),
                "pct_11_25": pct[0],
                "pct_22_5": pct[1],
                "pct_30": pct[2],
            }
        )

    def get_config(self):
        return {**super().get_config(), "bin_degrees": self.bin_degrees}


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class ContourMetrics(_PooledMetric):
    """Pixel-exact contour ``f_0_5`` and ``ap`` from pooled TP/FP/FN counts.

    A **fast training-time proxy** (no thinning, no distance tolerance): see
    ``contour_proxy.py`` for the exact definitions and ``contours.py`` for the BSDS
    ODS/OIS/AP that is the real evaluation. ``update_state(gt_contour, pred_prob,
    valid_mask=None)``, probabilities in [0, 1] (apply the sigmoid to the logits first).
    Predictions are bucketed by ``searchsorted`` on a float32 threshold grid, so the
    cost per batch is one pass over the pixels whatever ``num_thresholds`` is.
    """

    def __init__(
        self, num_thresholds: int = 99, name: str = "contour_metrics", dtype=None, **kwargs
    ):
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.num_thresholds = int(num_thresholds)
        self.thresholds = proxy_thresholds(self.num_thresholds)
        k = self.num_thresholds
        # Bucket b holds predictions with exactly b thresholds <= prob (b = 0..K).
        self.pos_buckets = self.add_variable((k + 1,), "zeros", dtype="float64", name="pos_buckets")
        self.neg_buckets = self.add_variable((k + 1,), "zeros", dtype="float64", name="neg_buckets")
        self.counts_0_5 = self.add_variable((3,), "zeros", dtype="float64", name="tp_fp_fn_0_5")

    def update_state(self, y_true, y_pred, sample_weight=None):
        _check_shapes(tf.convert_to_tensor(y_true), tf.convert_to_tensor(y_pred))
        gt = tf.reshape(tf.cast(y_true, tf.float32) > 0.5, [-1])
        prob = tf.reshape(tf.cast(y_pred, tf.float32), [-1])
        valid = tf.reshape(_valid_mask(sample_weight, tf.shape(y_pred)), [-1])
        self._track_invalid(prob, valid, in_range=(prob >= 0) & (prob <= 1))
        buckets = tf.searchsorted(tf.constant(self.thresholds)[None], prob[None], side="right")[0]
        pos = tf.cast(valid & gt, _ACC_DTYPE)
        neg = tf.cast(valid & ~gt, _ACC_DTYPE)
        k1 = self.num_thresholds + 1
        self.pos_buckets.assign_add(tf.math.unsorted_segment_sum(pos, buckets, k1))
        self.neg_buckets.assign_add(tf.math.unsorted_segment_sum(neg, buckets, k1))
        at_half = tf.cast(prob >= 0.5, _ACC_DTYPE)
        self.counts_0_5.assign_add(
            tf.stack(
                [
                    tf.reduce_sum(at_half * pos),
                    tf.reduce_sum(at_half * neg),
                    tf.reduce_sum((1.0 - at_half) * pos),
                ]
            )
        )

    def result(self):
        def prf(tp, fp, fn):
            precision = tf.math.divide_no_nan(tp, tp + fp)
            recall = tf.math.divide_no_nan(tp, tp + fn)
            return (
                precision,
                recall,
                tf.math.divide_no_nan(2.0 * precision * recall, precision + recall),
            )

        # tp[k] = predictions with prob >= t_k = those in buckets k+1..K.
        tp = tf.cumsum(self.pos_buckets, reverse=True)[1:]
        fp = tf.cumsum(self.neg_buckets, reverse=True)[1:]
        num_pos = tf.reduce_sum(self.pos_buckets)
        num_pixels = num_pos + tf.reduce_sum(self.neg_buckets)
        precision, recall, _ = prf(tp, fp, num_pos - tp)
        next_recall = tf.concat([recall[1:], tf.zeros([1], _ACC_DTYPE)], axis=0)
        ap = tf.reduce_sum((recall - next_recall) * precision)
        _, _, f05 = prf(self.counts_0_5[0], self.counts_0_5[1], self.counts_0_5[2])
        nan = tf.constant(float("nan"), _ACC_DTYPE)
        return self._finalize(
            {"f_0_5": tf.where(num_pixels > 0, f05, nan), "ap": tf.where(num_pixels > 0, ap, nan)}
        )

    def get_config(self):
        return {**super().get_config(), "num_thresholds": self.num_thresholds}
