"""ConvBNAct's matmul path (im2col × reshaped kernel) computes the convolution it replaces.

Both paths read the same kernel variable and differ only in the order of the float32
sums, so they are compared within the rounding bound of that arithmetic: an output (or a
gradient entry) is a sum of K products; recursive float32 summation of K terms in any
order is within (K−1)·u·Σ|terms| of the exact sum (u = eps/2), so two orders differ by at
most (K−1)·eps·Σ|terms| ≤ K·eps·Σ|terms|. Σ|terms| is computed per entry by running the
same operation on |inputs| in float64. A wrong patch order, dilation or kernel layout
gives errors of the order of Σ|terms| itself, ~1/(K·eps) ≈ 10⁴–10⁵ times the bound.
"""

from __future__ import annotations

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf
from float32_bounds import assert_within_sum_bounds

from mtsyn_tf.models.layers import ConvBNAct

# (kernel, padding, dilation, input side, channels): AlexNet's fc6 and fc7 at small width,
# and a plain 3×3 forced onto the matmul path.
CASES = {
    "fc6_dilated": (6, 5, 2, 13, 8),
    "fc7_1x1": (1, 0, 1, 13, 32),
    "plain_3x3": (3, 1, 1, 9, 8),
}


def _pair(kernel, padding, dilation, side, channels, filters=16):
    """The same linear (no BN) layer twice, conv and matmul, sharing weights."""
    kwargs = dict(
        filters=filters,
        kernel_size=kernel,
        padding=padding,
        dilation_rate=dilation,
        activation="linear",
        use_bn=False,
    )
    conv = ConvBNAct(conv_impl="conv", name="c", **kwargs)
    matmul = ConvBNAct(conv_impl="matmul", name="m", **kwargs)
    shape = (2, side, side, channels)
    conv.build(shape)
    matmul.build(shape)
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=w.shape).astype(np.float32) for w in conv.get_weights()]
    conv.set_weights(weights)
    matmul.set_weights(weights)
    x = rng.normal(size=shape).astype(np.float32)
    return conv, matmul, x


def _value_and_grads(layer, x, upstream):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * upstream)
    dx, dk = tape.gradient(loss, [x, layer.conv.kernel])
    return y.numpy(), dx.numpy(), dk.numpy()


def _abs_sums(layer, x, upstream):
    """Σ|terms| of every output / gradient entry: the same op on absolute values, float64."""
    padding = layer.padding
    xa = np.pad(np.abs(x), [(0, 0), (padding, padding), (padding, padding), (0, 0)])
    xa = tf.constant(xa, tf.float64)
    ka = tf.constant(np.abs(layer.conv.kernel.numpy()), tf.float64)
    ga = tf.constant(np.abs(upstream), tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([xa, ka])
        y = tf.nn.convolution(xa, ka, padding="VALID", dilations=layer.dilation_rate)
        y = y + np.abs(layer.conv.bias.numpy())  # the bias is one more term
        loss = tf.reduce_sum(y * ga)
    dx, dk = tape.gradient(loss, [xa, ka])
    dx = dx.numpy()[:, padding : padding + x.shape[1], padding : padding + x.shape[2]]
    return y.numpy(), dx, dk.numpy()


@pytest.mark.parametrize("skip_padding_rows", [True, False], ids=["rows_skipped", "dense"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_matmul_path_equals_conv_path(case, skip_padding_rows):
    kernel, padding, dilation, side, channels = CASES[case]
    conv, matmul, x = _pair(kernel, padding, dilation, side, channels)
    matmul.skip_padding_rows = skip_padding_rows
    out_side = side + 2 * padding - dilation * (kernel - 1)
    upstream = np.random.default_rng(1).normal(size=(2, out_side, out_side, 16))
    upstream = upstream.astype(np.float32)
    a = _value_and_grads(conv, x, upstream)
    b = _value_and_grads(matmul, x, upstream)
    bounds = _abs_sums(conv, x, upstream)
    # Terms per entry: output k·k·C (+ bias); d input ≤ k·k·F; d kernel = B·H_out·W_out.
    lengths = (kernel * kernel * channels + 1, kernel * kernel * 16, 2 * out_side * out_side)
    names = ("output", "d_input", "d_kernel")
    assert_within_sum_bounds(case, "conv", zip(names, a, b, bounds, lengths))


def _matmul_multiply_adds(layer, shape):
    """Σ M·K·N over the MatMuls of ``layer``'s traced forward graph."""
    x = tf.zeros(shape)
    # Traced, not run: with ONEDNN_MAX_CPU_ISA=AVX2 on a CPU that has AVX-512 BF16, TF still
    # sends bfloat16 matmuls to oneDNN, which then has no kernel for them and crashes.
    concrete = tf.function(layer).get_concrete_function(x)
    graph = concrete.graph
    total = 0
    for op in graph.get_operations():
        if op.type == "MatMul":
            (m, k), (_, n) = op.inputs[0].shape, op.inputs[1].shape
            total += m * k * n
    return total


def test_matmul_path_skips_the_padding_rows_products():
    # fc6's geometry: output row i's kernel row ky reads input row i + 2·ky − 5, inside the
    # 13 rows for 60 of the 78 (i, ky) pairs; the columns keep their padding.
    kernel, padding, dilation, side, channels = CASES["fc6_dilated"]
    _, matmul, x = _pair(kernel, padding, dilation, side, channels)
    out_side = side + 2 * padding - dilation * (kernel - 1)
    pairs = sum(
        0 <= i + dilation * ky - padding < side for i in range(out_side) for ky in range(kernel)
    )
    assert pairs == 60
    skipped = _matmul_multiply_adds(matmul, x.shape)
    matmul.skip_padding_rows = False
    dense = _matmul_multiply_adds(matmul, x.shape)
    per_pair = x.shape[0] * out_side * kernel * channels * 16  # B · W_out · k·C · F
    assert dense == out_side * kernel * per_pair
    assert skipped == pairs * per_pair


def test_matmul_path_where_every_tap_lands_in_the_padding():
    # A 1-pixel input, 2 taps dilated 2, padding 1: the one output pixel's taps read rows
    # −1 and +1, both padding. The row-skipping form has no matmul to run; the output is
    # the bias alone, as the convolution's, and the input gets no gradient.
    conv, matmul, x = _pair(kernel=2, padding=1, dilation=2, side=1, channels=4)
    upstream = np.ones((2, 1, 1, 16), np.float32)
    y_conv, dx_conv, _ = _value_and_grads(conv, x, upstream)
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = matmul(x)
        loss = tf.reduce_sum(y * upstream)
    dx = tape.gradient(loss, x, unconnected_gradients="zero")
    np.testing.assert_array_equal(y.numpy(), y_conv)
    np.testing.assert_array_equal(y.numpy(), np.broadcast_to(matmul.conv.bias.numpy(), y.shape))
    np.testing.assert_array_equal(dx.numpy(), np.zeros_like(dx_conv))
    np.testing.assert_array_equal(dx_conv, np.zeros_like(dx_conv))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_row_partial_results_are_summed_in_float32_under_mixed_precision(dtype):
    # One dense matmul accumulates in float32 and rounds once; the row-skipping form's six
    # partial results (fc6's geometry) must not be rounded to 16 bits after every add.
    kernel, padding, dilation, side, channels = CASES["fc6_dilated"]
    layer = ConvBNAct(
        16,
        kernel,
        padding=padding,
        dilation_rate=dilation,
        activation="linear",
        use_bn=False,
        conv_impl="matmul",
        dtype=keras.DTypePolicy(f"mixed_{dtype}"),
        name="m",
    )
    x = tf.zeros((2, side, side, channels), dtype)
    # Traced, not run: with ONEDNN_MAX_CPU_ISA=AVX2 on a CPU that has AVX-512 BF16, TF still
    # sends bfloat16 matmuls to oneDNN, which then has no kernel for them and crashes.
    concrete = tf.function(layer).get_concrete_function(x)
    graph = concrete.graph
    adds = [op for op in graph.get_operations() if op.type == "AddV2"]
    by_dtype = collections.Counter(op.outputs[0].dtype.name for op in adds)
    # Six kernel rows reach the input: five adds, all float32; the bias add comes after
    # the one rounding back to the compute dtype.
    assert by_dtype == {"float32": kernel - 1, dtype: 1}, by_dtype
    assert concrete.structured_outputs.dtype.name == dtype
    # float32 inputs get no casts around the sum.
    graph32 = (
        tf.function(_pair(kernel, padding, dilation, side, channels)[1])
        .get_concrete_function(tf.zeros((2, side, side, channels)))
        .graph
    )
    assert "Cast" not in {op.type for op in graph32.get_operations()}


def test_auto_picks_matmul_for_fc6_and_fc7_only():
    from mtsyn_tf.models import build_multitask_model

    backbone = build_multitask_model("small").backbone
    chosen = {
        name: getattr(backbone, name).use_matmul
        for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")
    }
    assert chosen == {
        "conv1": False,
        "conv2": False,
        "conv3": False,
        "conv4": False,
        "conv5": False,
        "fc6": True,
        "fc7": True,
    }
    # The kernel variables are the Conv2D's, as checkpoints and exports name them.
    assert backbone.fc6.conv.kernel.path.endswith("fc6_conv/kernel")


def test_conv_impl_round_trips_and_rejects_bad_values():
    layer = ConvBNAct(8, 1, conv_impl="conv", name="x")
    assert ConvBNAct.from_config(layer.get_config()).use_matmul is False
    with pytest.raises(ValueError, match="conv_impl must be one of"):
        ConvBNAct(8, 1, conv_impl="im2col")
    with pytest.raises(ValueError, match="conv_impl='matmul' needs a stride-1"):
        ConvBNAct(8, 3, strides=2, conv_impl="matmul")
