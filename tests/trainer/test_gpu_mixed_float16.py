"""``--precision=mixed`` on a GPU: mixed_float16 with dynamic loss scaling (GPU only).

float16 has an 11-bit mantissa (relative rounding 2^-11 ~ 4.9e-4, 8x finer than
bfloat16's, whose CPU test in test_mixed_precision.py bounds the losses at 1 % + 5e-4)
but a small range: gradients below ~6e-8 flush to zero, and scaled ones above 65504
overflow. Dynamic loss scaling (x 2^15, halved and the step skipped on overflow) handles
both, so on a GPU a mixed run must: compute the first forward pass's losses within the
bfloat16 bounds of float32's (no update has happened yet, so skipped steps do not enter);
keep every loss finite; keep the loss scale finite and >= 1; apply at least one step in
three; and move every trainable variable (a variable whose gradients all flushed to zero
would not move). The exact unscaling arithmetic is tested in float32 in
test_mixed_precision.py (loss-scaled optimizers give the unscaled update). TF32 is off so
the float32 reference is float32.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_mixed_precision import LOSS_KEYS, _run, _trainer, _weights  # noqa: E402 - sibling

pytestmark = pytest.mark.skipif(
    not tf.config.list_physical_devices("GPU"),
    reason="no GPU: mixed_float16 with loss scaling is the GPU path of --precision=mixed",
)


@pytest.fixture
def no_tf32():
    before = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    yield
    tf.config.experimental.enable_tensor_float_32_execution(before)


def _cosine(a, b):
    a, b = a.reshape(-1).astype(np.float64), b.reshape(-1).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def check_mixed_float16_tracks_float32():
    """The test body (on a CPU it runs too, with Eigen's float16 kernels, as a check)."""
    reference = _trainer("float32", lambda: keras.optimizers.SGD(0.01))
    initial = [v.numpy() for v in _weights(reference)]
    mixed = _trainer(
        "mixed_float16",
        lambda: keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.01)),
        initial,
    )
    assert mixed.model.backbone.dtype_policy.compute_dtype == "float16"
    assert all(v.dtype == "float32" for v in _weights(mixed))
    ref_history, mixed_history = _run(reference, "float32"), _run(mixed, "mixed_float16")
    for key in LOSS_KEYS:
        np.testing.assert_allclose(
            mixed_history[0][key], ref_history[0][key], rtol=0.01, atol=5e-4, err_msg=key
        )
    for step, logs in enumerate(mixed_history):
        assert all(np.isfinite(v) for v in logs.values()), (step, logs)
    for opt in (mixed.task_optimizer, mixed.disc_optimizer):
        scale = float(opt.dynamic_scale.numpy())
        assert np.isfinite(scale) and 1.0 <= scale <= 2.0**15, scale
        assert int(opt.iterations.numpy()) >= 1
    frozen = [
        v.path
        for v, w0 in zip(_weights(mixed), initial)
        if v.trainable and not np.any(v.numpy() != w0)
    ]
    assert not frozen, f"never updated (gradients flushed to zero?): {frozen}"
    assert all(np.all(np.isfinite(v.numpy())) for v in _weights(mixed))
    return [float(o.dynamic_scale.numpy()) for o in (mixed.task_optimizer, mixed.disc_optimizer)]


def test_mixed_float16_with_loss_scaling_tracks_float32(no_tf32):
    print("loss scales after 3 steps:", check_mixed_float16_tracks_float32())
