"""``--precision=mixed`` on a GPU: mixed_float16 with dynamic loss scaling (GPU only).

float16 has an 11-bit mantissa (relative rounding 2^-11 ~ 4.9e-4, 8x finer than
bfloat16's, whose CPU test in test_mixed_precision.py bounds the losses at 1 % + 5e-4)
but a small range: gradients below ~6e-8 flush to zero, which loss scaling (x 2^15, then
/ 2^15 in float32) prevents. So on a GPU the mixed run must (a) track the float32 run's
losses within the bfloat16 bounds, (b) apply every step (no overflow: the scale stays
2^15, the optimizers count every step) and (c) move every trainable variable in the
direction float32 moves it: the cosine between the two one-step updates of each variable
is > 0.9 (float16 rounding perturbs each gradient element by ~1e-3 relative; only
elements that are sums of nearly cancelling terms move more, and they carry little of
the norm: measured >= 0.99 on CPU emulation, the same kernels in float16 on the CPU).
TF32 is switched off so the float32 reference is float32.
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
    """The test body (also run on a CPU to measure the numbers in the docstring)."""
    reference = _trainer("float32", lambda: keras.optimizers.SGD(0.01))
    initial = [v.numpy() for v in _weights(reference)]
    mixed = _trainer(
        "mixed_float16",
        lambda: keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.01)),
        initial,
    )
    assert mixed.model.backbone.dtype_policy.compute_dtype == "float16"
    assert all(v.dtype == "float32" for v in _weights(mixed))
    ref_first, mixed_first = _run(reference, "float32", 1), _run(mixed, "mixed_float16", 1)
    cosines = {}
    for r, m, w0 in zip(_weights(reference), _weights(mixed), initial):
        if not r.trainable:
            continue
        ref_update, mixed_update = r.numpy() - w0, m.numpy() - w0
        assert np.all(np.isfinite(mixed_update)), r.path
        assert np.abs(mixed_update).max() > 0, f"{r.path}: no update (gradient underflow?)"
        cosines[r.path] = _cosine(ref_update, mixed_update)
    ref_rest, mixed_rest = _run(reference, "float32", 2), _run(mixed, "mixed_float16", 2)
    for step, (ref, mix) in enumerate(zip(ref_first + ref_rest, mixed_first + mixed_rest)):
        for key in LOSS_KEYS:
            assert np.isfinite(mix[key]), (step, key)
            np.testing.assert_allclose(
                mix[key], ref[key], rtol=0.01, atol=5e-4, err_msg=f"step {step} {key}"
            )
    for opt in (mixed.task_optimizer, mixed.disc_optimizer):
        assert float(opt.dynamic_scale.numpy()) == 2.0**15  # no overflow, no skipped step
        assert int(opt.iterations.numpy()) == 3
    return cosines


def test_mixed_float16_with_loss_scaling_tracks_float32(no_tf32):
    cosines = check_mixed_float16_tracks_float32()
    low = {k: round(c, 4) for k, c in cosines.items() if not c > 0.9}
    assert not low, low
