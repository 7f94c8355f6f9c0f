"""Transposed convolutions as matmul + col2im compute the Conv2DTranspose they replace.

``conv_transpose_as_matmul`` reads the Conv2DTranspose's own kernel and bias and computes
the same sums in another order. It is compared with the transposed convolution in float64
(TensorFlow's Eigen kernel: oneDNN has no float64 path), the exact sums for this purpose,
within the rounding bound of float32 arithmetic: an entry that is a sum of K products is
within (K−1)·u·Σ|terms| ≤ K·eps·Σ|terms| of the exact sum in any summation order
(u = eps/2), with Σ|terms| from the same operation on |inputs| in float64. The float32
Conv2DTranspose itself is not the reference: under ``ONEDNN_MAX_CPU_ISA=AVX2`` oneDNN's
kernel gradient of the 1×1 stride-2 case is wrong (entries off by O(1), TF 2.21; Eigen and
oneDNN AVX-512 agree with float64), which the first version of this test caught. A wrong tap placement, phase interleave or kernel layout moves
entries by the order of Σ|terms| itself, ~1/(K·eps) ≫ 1 times the bound.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from float32_bounds import assert_within_sum_bounds

from mtsyn_tf.models.layers import ConvBNAct, conv_transpose_as_matmul

# (kernel, stride, in channels, filters, input side): the AlexNet heads' Deconv8 (3, s2,
# wide → narrow) and output (3, s2, 64 → 1/3) at small width, Deconv10's 5×5, a kernel
# smaller than its stride (phases without taps) and a stride-3 case.
CASES = {
    "deconv8": (3, 2, 48, 4, 13),
    "output": (3, 2, 16, 3, 9),
    "k5_s2": (5, 2, 8, 4, 7),
    "k1_s2": (1, 2, 6, 3, 5),
    "k4_s3": (4, 3, 6, 2, 6),
}


def _layer_and_data(kernel, stride, channels, filters, side):
    conv = keras.layers.Conv2DTranspose(filters, kernel, strides=stride, use_bias=True)
    shape = (2, side, side, channels)
    conv.build(shape)
    rng = np.random.default_rng(0)
    conv.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in conv.get_weights()])
    x = rng.normal(size=shape).astype(np.float32)
    out_shape = conv.compute_output_shape(shape)
    upstream = rng.normal(size=out_shape).astype(np.float32)
    return conv, x, upstream


def _value_and_grads(fn, conv, x, upstream):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
        loss = tf.reduce_sum(y * upstream)
    dx, dk, db = tape.gradient(loss, [x, conv.kernel, conv.bias])
    return y.numpy(), dx.numpy(), dk.numpy(), db.numpy()


def _exact(conv, x, upstream):
    """Output and gradients of the transposed convolution in float64."""
    x64 = tf.constant(x, tf.float64)
    k64 = tf.constant(conv.kernel.numpy(), tf.float64)
    b64 = tf.constant(conv.bias.numpy(), tf.float64)
    with tf.GradientTape() as tape:
        tape.watch([x64, k64, b64])
        y = tf.nn.conv2d_transpose(x64, k64, upstream.shape, strides=conv.strides, padding="VALID")
        y = y + b64
        loss = tf.reduce_sum(y * upstream.astype(np.float64))
    dx, dk, db = tape.gradient(loss, [x64, k64, b64])
    return y.numpy(), dx.numpy(), dk.numpy(), db.numpy()


def _abs_sums(conv, x, upstream):
    """Σ|terms| of every output / gradient entry: the transposed conv on |inputs|, float64."""
    xa = tf.constant(np.abs(x), tf.float64)
    ka = tf.constant(np.abs(conv.kernel.numpy()), tf.float64)
    ga = tf.constant(np.abs(upstream), tf.float64)
    with tf.GradientTape() as tape:
        tape.watch([xa, ka])
        y = tf.nn.conv2d_transpose(
            xa, ka, upstream.shape, strides=conv.strides, padding="VALID"
        ) + np.abs(conv.bias.numpy())
        loss = tf.reduce_sum(y * ga)
    dx, dk = tape.gradient(loss, [xa, ka])
    db = np.abs(upstream).astype(np.float64).sum(axis=(0, 1, 2))
    return y.numpy(), dx.numpy(), dk.numpy(), db


@pytest.mark.parametrize("case", sorted(CASES))
def test_matmul_form_equals_conv2d_transpose(case):
    kernel, stride, channels, filters, side = CASES[case]
    conv, x, upstream = _layer_and_data(*CASES[case])
    a = _exact(conv, x, upstream)
    b = _value_and_grads(lambda t: conv_transpose_as_matmul(conv, t), conv, x, upstream)
    bounds = _abs_sums(conv, x, upstream)
    out_side = upstream.shape[1]
    # Terms per entry: output ≤ ceil(k/s)²·C (+ bias); d input = k²·F; d kernel = B·H·W;
    # d bias = B·H_out·W_out.
    taps = -(-kernel // stride)
    lengths = (
        taps * taps * channels + 1,
        kernel * kernel * filters,
        2 * side * side,
        2 * out_side * out_side,
    )
    names = ("output", "d_input", "d_kernel", "d_bias")
    assert_within_sum_bounds(case, "exact", zip(names, a, b, bounds, lengths))


def test_conv_bn_act_takes_the_matmul_form_only_for_wide_to_narrow_transposes():
    """ "auto": k·k·F columns per pixel no wider than the input (Deconv8, the narrow outputs),
    else Conv2DTranspose."""
    from mtsyn_tf.models import build_multitask_model

    model = build_multitask_model("small")
    head = model.heads["depth"]
    calls = []
    original = head.deconv8.conv.call, head.deconv10.conv.call

    def spy(name, call):
        def wrapped(*args, **kwargs):
            calls.append(name)
            return call(*args, **kwargs)

        return wrapped

    head.deconv8.conv.call = spy("deconv8", original[0])
    head.deconv10.conv.call = spy("deconv10", original[1])
    for task in ("depth", "normals"):
        out = model.heads[task].out
        out.call = spy(f"{task}.output", out.call)
    model(tf.zeros([1, model.image_size, model.image_size, 3]), training=False)
    # Deconv8: fc7 (256 wide in "small") → 16, 3×3: 144 columns ≤ 256 → matmul, no conv call.
    # Deconv10: 16 → 16, 5×5: 400 columns > 16 → Keras' Conv2DTranspose.
    # Outputs: 16 → 1 (depth), 3×3: 9 columns ≤ 16 → matmul; 16 → 3 (normals): 27 > 16.
    assert sorted(calls) == ["deconv10", "normals.output"]


def test_conv_impl_conv_keeps_conv2d_transpose_and_matmul_is_checked():
    layer = ConvBNAct(8, 3, strides=2, transpose=True, conv_impl="conv", name="t")
    assert ConvBNAct.from_config(layer.get_config()).use_matmul is False
    with pytest.raises(ValueError, match="conv_impl='matmul' needs"):
        ConvBNAct(8, 3, strides=2, transpose=True, padding="same", conv_impl="matmul")
    with pytest.raises(ValueError, match="square kernels and strides"):
        conv = keras.layers.Conv2DTranspose(2, (3, 1), strides=2)
        conv.build((1, 4, 4, 2))
        conv_transpose_as_matmul(conv, tf.zeros([1, 4, 4, 2]))
