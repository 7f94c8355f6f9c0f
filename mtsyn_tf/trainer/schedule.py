"""Learning-rate schedule of the reference code: ×0.1 at 60 % and at 90 % of training."""

from __future__ import annotations

import keras


def reference_lr_schedule(base_lr: float, total_steps: int, drops=(0.6, 0.9), factor: float = 0.1):
    """Piecewise-constant schedule; the reference's 30 epochs drop at 18 and 27 = 60 % / 90 %."""
    if base_lr <= 0:
        raise ValueError(f"base_lr must be > 0. Received: base_lr={base_lr}")
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0. Received: total_steps={total_steps}")
    if any(not 0 < d < 1 for d in drops) or list(drops) != sorted(drops):
        raise ValueError(f"drops must be increasing fractions in (0, 1). Received: drops={drops}")
    boundaries = sorted({max(1, int(round(d * total_steps))) for d in drops})
    values = [base_lr * factor**i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def make_adam(base_lr: float, total_steps: int, beta_1: float = 0.5, drops=(0.6, 0.9)):
    """Adam(lr, β1 = 0.5) with the reference drops, as used for both B/H and D."""
    return keras.optimizers.Adam(
        learning_rate=reference_lr_schedule(base_lr, total_steps, drops), beta_1=beta_1
    )
