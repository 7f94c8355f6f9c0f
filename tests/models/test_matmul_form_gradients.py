"""The matmul forms' backward passes stay free of strided-slice scatters.

Taking each tap of the col2im columns (and each im2col patch) by Python indexing makes
TensorFlow differentiate k·k ``StridedSlice`` ops, each with a ``StridedSliceGrad`` that
writes a zero tensor the size of the whole input and scatters into it; those were a third
of the ``small`` train step (benchmarks/step_profile.py). The forms take taps by
``unstack`` (gradient: one stack) and patches by ``ops.slice`` (gradient: a pad). This
checks the op types of the traced gradient; the speed itself is the benchmark's.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.models.layers import ConvBNAct

# (layer arguments, input shape): a transposed form (Deconv8-like, wide → narrow) and the
# dilated fc6-like im2col form.
CASES = {
    "transpose": (dict(filters=2, kernel_size=3, strides=2, transpose=True), (2, 5, 5, 32)),
    "dilated": (dict(filters=4, kernel_size=3, dilation_rate=2, padding=2), (2, 7, 7, 3)),
}


def _gradient_op_types(layer, shape):
    x = tf.constant(np.random.default_rng(0).normal(size=shape).astype(np.float32))
    layer.build(shape)
    assert layer.use_matmul

    @tf.function
    def grads(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(layer(x, training=True)))
        return tape.gradient(loss, [x, *layer.trainable_variables])

    graph = grads.get_concrete_function(x).graph
    return {op.type for op in graph.get_operations()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matmul_form_backward_has_no_strided_slice_grad(case):
    kwargs, shape = CASES[case]
    types = _gradient_op_types(ConvBNAct(conv_impl="matmul", **kwargs), shape)
    assert "MatMul" in types  # the matmul form was traced, not the convolution
    assert "StridedSliceGrad" not in types, sorted(types)
