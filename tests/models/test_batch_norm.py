"""``BatchNorm``'s fused training pass computes Keras BatchNormalization's function.

Reference: the same batch normalisation in float64 (numpy, closed form: biased batch
variance for the normalisation and the moving average, the full backward through the
batch statistics). Tolerances come from float32 arithmetic: every per-channel statistic
is a sum of n = N·H·W terms, whose float32 value lies within n·u·Σ|terms| of the exact sum
in any order (u = eps/2), and the output and gradients combine a few such sums; each
bound below is 8·n·eps times the size of the terms involved. The mistakes this guards
against are far above it: Bessel's correction in the wrong place moves the variance by
1/n (here 6·10⁻³ relative, vs n·eps ≈ 2·10⁻⁵), a missing statistics term in the
backward moves dx by O(|dy|·|γ|/σ).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.models.batch_norm import BatchNorm

EPS32 = float(np.finfo(np.float32).eps)
SHAPE = (2, 9, 9, 5)  # n = 162 per channel


def _data():
    rng = np.random.default_rng(0)
    # A mean well away from 0 exercises the variance's cancellation.
    x = (3.0 * rng.normal(size=SHAPE) + 2.0).astype(np.float32)
    gamma = rng.uniform(0.5, 2.0, size=SHAPE[-1]).astype(np.float32)
    beta = rng.normal(size=SHAPE[-1]).astype(np.float32)
    upstream = rng.normal(size=SHAPE).astype(np.float32)
    return x, gamma, beta, upstream


def _float64_reference(x, gamma, beta, upstream, epsilon, momentum):
    x, dy = x.astype(np.float64), upstream.astype(np.float64)
    n = x.size // x.shape[-1]
    mean = x.mean(axis=(0, 1, 2))
    variance = x.var(axis=(0, 1, 2))  # biased, as Keras normalises and averages
    sigma = np.sqrt(variance + epsilon)
    xhat = (x - mean) / sigma
    y = gamma * xhat + beta
    dbeta = dy.sum(axis=(0, 1, 2))
    dgamma = (dy * xhat).sum(axis=(0, 1, 2))
    dx = gamma / sigma * (dy - dbeta / n - xhat * dgamma / n)
    # From Keras' initial moving statistics (mean 0, variance 1).
    moving = ((1 - momentum) * mean, momentum * 1.0 + (1 - momentum) * variance)
    return dict(y=y, dx=dx, dgamma=dgamma, dbeta=dbeta, moving=moving, xhat=xhat, sigma=sigma)


def _fused_training_pass(layer, x, upstream):
    @tf.function  # graph mode: what a train step runs (oneDNN rewrites the fused op there)
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
        dx, dgamma, dbeta = tape.gradient(y, [x, layer.gamma, layer.beta], upstream)
        return y, dx, dgamma, dbeta

    return [t.numpy() for t in run(tf.constant(x))], run.get_concrete_function(tf.constant(x))


def test_fused_training_pass_matches_float64_batch_norm():
    x, gamma, beta, upstream = _data()
    layer = BatchNorm(momentum=0.9, epsilon=1e-5)
    layer.build(SHAPE)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    (y, dx, dgamma, dbeta), concrete = _fused_training_pass(layer, x, upstream)
    op_types = {op.type for op in concrete.graph.get_operations()}
    assert "FusedBatchNormV3" in op_types  # the fused path was taken

    ref = _float64_reference(x, gamma, beta, upstream, 1e-5, 0.9)
    n = x.size // x.shape[-1]
    xhat_max = np.abs(ref["xhat"]).max(axis=(0, 1, 2))
    dy_abs = np.abs(upstream).astype(np.float64)
    scale = np.abs(gamma) / ref["sigma"]
    bound = 8 * n * EPS32
    np.testing.assert_array_less(
        np.abs(y - ref["y"]).max(axis=(0, 1, 2)), bound * (np.abs(gamma) * (1 + xhat_max) + 1)
    )
    dx_bound = bound * scale * dy_abs.max(axis=(0, 1, 2)) * (1 + xhat_max) ** 2
    np.testing.assert_array_less(np.abs(dx - ref["dx"]).max(axis=(0, 1, 2)), dx_bound)
    sum_dy = dy_abs.sum(axis=(0, 1, 2))
    np.testing.assert_array_less(np.abs(dgamma - ref["dgamma"]), bound * sum_dy * (1 + xhat_max))
    np.testing.assert_array_less(np.abs(dbeta - ref["dbeta"]), bound * sum_dy)
    # The moving averages take the biased variance (Keras' rule), not the kernel's unbiased.
    moving_mean, moving_variance = ref["moving"]
    mean_bound = bound * (1 - 0.9) * np.abs(x).mean(axis=(0, 1, 2))
    np.testing.assert_array_less(np.abs(layer.moving_mean.numpy() - moving_mean), mean_bound)
    # E[x²]-sized terms: an implementation may form the variance as E[x²] − E[x]².
    var_bound = bound * (0.9 + (1 - 0.9) * (x.astype(np.float64) ** 2).mean(axis=(0, 1, 2)))
    np.testing.assert_array_less(np.abs(layer.moving_variance.numpy() - moving_variance), var_bound)


def test_inference_and_unfusable_cases_are_keras_batch_normalization():
    x, gamma, beta, _ = _data()
    ours = BatchNorm(momentum=0.9, epsilon=1e-5)
    keras_bn = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    for layer in (ours, keras_bn):
        layer.build(SHAPE)
        layer.set_weights([gamma, beta, np.full(5, 0.5, np.float32), np.full(5, 2.0, np.float32)])
    np.testing.assert_array_equal(ours(x, training=False), keras_bn(x, training=False))
    # A 2-D input (no NHWC kernel) trains through Keras' own call: identical updates.
    flat = x.reshape(-1, 5)
    ours, keras_bn = BatchNorm(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    np.testing.assert_array_equal(ours(flat, training=True), keras_bn(flat, training=True))
    np.testing.assert_array_equal(ours.moving_variance.numpy(), keras_bn.moving_variance.numpy())


@pytest.mark.parametrize("kwargs", [dict(synchronized=True), dict(renorm=True)])
def test_synchronized_and_renorm_layers_keep_keras_training_pass(kwargs):
    layer = BatchNorm(**kwargs)
    x = tf.constant(_data()[0])
    layer.build(SHAPE)
    assert not layer._fusable(x, None)
    graph = tf.function(lambda x: layer(x, training=True)).get_concrete_function(x).graph
    assert "FusedBatchNormV3" not in {op.type for op in graph.get_operations()}


def test_config_round_trip():
    layer = BatchNorm(momentum=0.8, epsilon=1e-4, name="bn")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, BatchNorm)
    assert (clone.momentum, clone.epsilon, clone.name) == (0.8, 1e-4, "bn")


def test_nan_propagates_through_conv_bn_relu_in_a_graph():
    """A NaN input pixel makes its channels' batch statistics NaN, hence every output NaN.

    oneDNN's fused BatchNorm + ReLU kernel (a grappler rewrite) would map those NaNs to 0
    and hide them from the non-finite guards; ``BatchNorm`` keeps the ReLU apart."""
    x = np.random.default_rng(1).normal(size=(2, 9, 9, 3)).astype(np.float32)
    x[0, 4, 4, 0] = np.nan
    conv = keras.layers.Conv2D(8, 3, use_bias=False)  # 8+ channels: oneDNN fuses
    bn = BatchNorm()

    @tf.function
    def forward(x):
        return tf.nn.relu(bn(conv(x), training=True))

    assert np.isnan(forward(tf.constant(x)).numpy()).all()
