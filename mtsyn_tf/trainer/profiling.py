"""TensorBoard profiler traces of chosen training steps (``--profile_steps=START,STOP``).

The trace lands in ``<workdir>/profile/plugins/profile/<timestamp>/`` and is opened with
TensorBoard's Profile tab (``tensorboard --logdir <workdir>/profile``; needs the
``tensorboard-plugin-profile`` package to *view*, not to write). Steps count from 1
over the whole run, resumes included; tracing starts before step START and stops after
step STOP. Skip the first steps: they include tracing and graph optimisation.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf
from absl import logging


def parse_profile_steps(value) -> tuple[int, int] | None:
    """``"10,15"`` / ``(10, 15)`` → (10, 15); ``None`` / ``""`` → None (no profiling)."""
    if value is None or value == "" or value == ():
        return None
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
    else:
        parts = list(value)
    try:
        start, stop = (int(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(
            f"profile_steps must be two step numbers START,STOP. Received: profile_steps={value!r}"
        ) from None
    if not 1 <= start <= stop:
        raise ValueError(
            f"profile_steps needs 1 <= START <= STOP. Received: profile_steps={value!r}"
        )
    return start, stop


class StepProfiler:
    """Starts/stops ``tf.profiler`` around global steps [start, stop]; usable from any loop."""

    def __init__(self, logdir: str, steps: tuple[int, int]):
        self.logdir = logdir
        self.start, self.stop = steps
        self.active = False
        self.done = False

    def before_step(self, step: int) -> None:
        """Call before running global step ``step`` (1-based)."""
        if not self.done and not self.active and self.start <= step <= self.stop:
            os.makedirs(self.logdir, exist_ok=True)
            tf.profiler.experimental.start(self.logdir)
            self.active = True
            logging.info("Profiling steps %d..%d into %s", step, self.stop, self.logdir)

    def after_step(self, step: int) -> None:
        if self.active and step >= self.stop:
            self.finish()

    def finish(self) -> None:
        if self.active:
            tf.profiler.experimental.stop()
            self.active = False
            self.done = True


class ProfileCallback(keras.callbacks.Callback):
    """``StepProfiler`` for ``fit``; ``initial_step`` is the number of steps already run."""

    def __init__(self, logdir: str, steps: tuple[int, int], initial_step: int = 0):
        super().__init__()
        self.profiler = StepProfiler(logdir, steps)
        self.step = initial_step

    def on_train_batch_begin(self, batch, logs=None):
        self.profiler.before_step(self.step + 1)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self.profiler.after_step(self.step)

    def on_train_end(self, logs=None):
        self.profiler.finish()
