"""Mixed precision: which Keras dtype policy a run uses, and loss scaling for it.

``--precision=mixed`` computes convolutions and matmuls in 16 bits and keeps every
variable, BatchNorm statistic, loss and the discriminator's logits in float32 (the
trainer casts head outputs and logits before the losses):

* on a GPU: ``mixed_float16``. float16's range is small (max 65504, smallest normal
  6e-5), so small gradients underflow: both optimizers are wrapped in
  ``keras.optimizers.LossScaleOptimizer`` (dynamic scale, starts at 2^15, halves and
  skips the step on overflow, doubles after 2000 finite steps). The trainer multiplies
  each stage's loss by ``optimizer.scale_loss`` and the optimizer divides the gradients
  again before applying them.
* on a CPU (or with no GPU): ``mixed_bfloat16``. bfloat16 has float32's exponent range,
  so no loss scaling is needed (Keras recommends none); only the mantissa is shorter.

The policy is global Keras state: set it before the model is built
(``use_policy`` restores the previous policy on exit, for tests and notebooks).
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

PRECISIONS = ("float32", "mixed")


def resolve_policy(precision: str, device: str | None = None) -> str:
    """The Keras dtype policy name for ``precision`` on ``device`` ("gpu"/"cpu"; None: any GPU
    visible → "gpu")."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision must be one of {PRECISIONS}. Received: precision={precision!r}"
        )
    if precision == "float32":
        return "float32"
    if device is None:
        device = "gpu" if tf.config.list_logical_devices("GPU") else "cpu"
    if device not in ("gpu", "cpu"):
        raise ValueError(f"device must be 'gpu' or 'cpu'. Received: device={device!r}")
    return "mixed_float16" if device == "gpu" else "mixed_bfloat16"


def needs_loss_scaling(policy: str) -> bool:
    return policy == "mixed_float16"


def wrap_optimizer(optimizer, policy: str):
    """``LossScaleOptimizer(optimizer)`` under ``mixed_float16``, else ``optimizer``."""
    if needs_loss_scaling(policy):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def set_policy(policy: str) -> None:
    keras.mixed_precision.set_dtype_policy(policy)


@contextlib.contextmanager
def use_policy(policy: str):
    """Sets the global dtype policy inside the block and restores the previous one."""
    previous = keras.mixed_precision.dtype_policy()
    set_policy(policy)
    try:
        yield policy
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
