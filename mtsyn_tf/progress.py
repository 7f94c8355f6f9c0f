"""Progress lines with rate and ETA for the long steps (render, train, evaluate, export).

One log line at most every ``interval_s``: ``label [#####     ] done/total unit, elapsed,
rate, ETA``. No TensorFlow import at module level (the demo's render workers import the
demo module, and DrJit must never load after TensorFlow); ``training_callback`` imports
Keras when called.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from absl import logging


class Progress:
    """Counts ``done`` of ``total`` ``unit``s; logs the bar, rate and ETA when due."""

    def __init__(
        self,
        label: str,
        total: int,
        unit: str = "items",
        interval_s: float = 10.0,
        log: Callable = logging.info,
    ):
        if total < 1:
            raise ValueError(f"total must be >= 1. Received: total={total}")
        self.label, self.total, self.unit = label, total, unit
        self.interval_s, self.log = interval_s, log
        self.done, self.start, self._last = 0, time.perf_counter(), -math.inf

    def update(self, n: int = 1, force: bool = False) -> None:
        self.done = min(self.done + n, self.total)
        now = time.perf_counter()
        if force or now - self._last >= self.interval_s or self.done >= self.total:
            self._last = now
            self.log("%s", self.line(now - self.start))

    def line(self, elapsed: float) -> str:
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = f"{(self.total - self.done) / rate:.0f} s" if rate > 0 else "?"
        bar = "#" * int(20 * self.done / self.total)
        return (
            f"{self.label} [{bar:<20s}] {self.done}/{self.total} {self.unit}, "
            f"{elapsed:.0f} s, {rate:.2f} {self.unit}/s, ETA {eta}"
        )


def training_callback(total_steps: int, images_per_step: int, interval_s: float = 10.0):
    """A Keras callback logging steps done of ``total_steps``, images/s and the ETA.

    Counts every ``on_train_batch_end`` across epochs (a resumed run starts at 0 and its
    ETA is for the steps this process runs).
    """
    import keras

    class TrainingProgress(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.progress = Progress("train", total_steps, "steps", interval_s)

        def on_train_batch_end(self, batch, logs=None):
            self.progress.update()

        def on_epoch_end(self, epoch, logs=None):
            elapsed = time.perf_counter() - self.progress.start
            rate = self.progress.done * images_per_step / elapsed if elapsed > 0 else 0.0
            self.progress.log("train epoch %d: %.1f images/s so far", epoch + 1, rate)

    return TrainingProgress()
