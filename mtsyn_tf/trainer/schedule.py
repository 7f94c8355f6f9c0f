"""Learning-rate schedules and optimizers: the reference code's (×0.1 at 60 % and 90 %) and a
warmup + cosine schedule for short runs (the demo's recipe)."""

from __future__ import annotations

import keras

from mtsyn_tf.trainer.fused_adam import FusedAdam


def reference_lr_schedule(base_lr: float, total_steps: int, drops=(0.6, 0.9), factor: float = 0.1):
    """Piecewise-constant schedule; the reference's 30 epochs drop at 18 and 27 = 60 % / 90 %.

    The optimizer's k-th update (k = 0, 1, …) reads the rate at step k; PyTorch's
    ``MultiStepLR`` gives the first update of epoch 18 the dropped rate, i.e. update
    ``round(0.6·T)``. Keras' ``PiecewiseConstantDecay`` switches *after* a boundary, so the
    boundary is that update − 1.
    """
    if base_lr <= 0:
        raise ValueError(f"base_lr must be > 0. Received: base_lr={base_lr}")
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0. Received: total_steps={total_steps}")
    if any(not 0 < d < 1 for d in drops) or list(drops) != sorted(drops):
        raise ValueError(f"drops must be increasing fractions in (0, 1). Received: drops={drops}")
    boundaries = sorted({max(1, int(round(d * total_steps))) - 1 for d in drops})
    values = [base_lr * factor**i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


# "step": the reference code's ×0.1 drops; "cosine": linear warmup, then cosine decay to 0.
LR_SCHEDULES = ("step", "cosine")


def warmup_cosine_schedule(base_lr: float, total_steps: int, warmup_fraction: float = 0.0):
    """Linear warmup to ``base_lr`` over ``round(warmup_fraction·T)`` updates, then cosine to 0.

    Update k < W reads ``base_lr/W + (base_lr − base_lr/W)·k/W`` (Keras' linear warmup from
    ``initial_learning_rate = base_lr/W``, so the first update is not wasted at rate 0);
    update k ≥ W reads ``base_lr·½(1 + cos(π·(k − W)/(T − W)))``.
    """
    if base_lr <= 0:
        raise ValueError(f"base_lr must be > 0. Received: base_lr={base_lr}")
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0. Received: total_steps={total_steps}")
    if not 0 <= warmup_fraction < 1:
        raise ValueError(
            f"warmup_fraction must be in [0, 1). Received: warmup_fraction={warmup_fraction}"
        )
    warmup = int(round(warmup_fraction * total_steps))
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(base_lr, total_steps)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=base_lr / warmup,
        decay_steps=max(1, total_steps - warmup),
        warmup_target=base_lr,
        warmup_steps=warmup,
    )


def lr_schedule(
    base_lr: float,
    total_steps: int,
    kind: str = "step",
    drops=(0.6, 0.9),
    warmup_fraction: float = 0.0,
):
    """The run's schedule: ``kind`` "step" (reference, ``drops``) or "cosine" (``warmup_fraction``)."""
    if kind == "step":
        if warmup_fraction:
            raise ValueError(
                "warmup_fraction applies to lr_schedule='cosine' only (the step schedule has no "
                f"warmup). Received: lr_schedule='step', warmup_fraction={warmup_fraction}"
            )
        return reference_lr_schedule(base_lr, total_steps, drops)
    if kind == "cosine":
        return warmup_cosine_schedule(base_lr, total_steps, warmup_fraction)
    raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}. Received: lr_schedule={kind!r}")


def make_adam(base_lr: float, total_steps: int, beta_1: float = 0.5, drops=(0.6, 0.9), **schedule):
    """Adam(lr, β1 = 0.5) with the reference drops: B and H (and D with --disc_optimizer=adam).

    ``schedule``: ``kind`` / ``warmup_fraction`` of ``lr_schedule`` (default: the reference's).
    Keras' Adam with its update in TensorFlow's fused kernel (``fused_adam.FusedAdam``).
    """
    return FusedAdam(
        learning_rate=lr_schedule(base_lr, total_steps, drops=drops, **schedule), beta_1=beta_1
    )


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class CoupledWeightDecaySGD(keras.optimizers.SGD):
    """SGD whose weight decay is added to the gradient before momentum (PyTorch / Caffe).

    ``torch.optim.SGD(weight_decay=wd)`` (the reference's D optimizer) steps on
    ``g + wd·w`` and feeds that through the momentum buffer; Keras' own ``weight_decay``
    is decoupled (``w -= lr·wd·w`` outside the momentum), which decays ~10× less at
    momentum 0.9. Every trainable variable is decayed, BatchNorm's γ/β included, as
    ``netD.parameters()`` are in the reference.
    """

    def __init__(self, l2: float = 5e-4, **kwargs):
        super().__init__(**kwargs)
        if not l2 >= 0:
            raise ValueError(f"l2 must be >= 0. Received: l2={l2}")
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        if self.l2:
            gradient = gradient + keras.ops.cast(self.l2, variable.dtype) * variable
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config["l2"] = self.l2
        return config


def make_disc_sgd(
    base_lr: float,
    total_steps: int,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    drops=(0.6, 0.9),
    **schedule,
):
    """D's optimizer in the reference code: SGD(lr, momentum 0.9, weight decay 5e-4), same drops
    (or the same ``lr_schedule`` as B and H: ``schedule`` holds its ``kind`` / ``warmup_fraction``)."""
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1). Received: momentum={momentum}")
    return CoupledWeightDecaySGD(
        l2=weight_decay,
        learning_rate=lr_schedule(base_lr, total_steps, drops=drops, **schedule),
        momentum=momentum,
    )
