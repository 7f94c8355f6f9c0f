"""The run driver's own callbacks: what they write, and no host work per step they skip."""

from __future__ import annotations

import glob
import os
import types

import keras
import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from mtsyn_tf.trainer.epoch_loop import EpochTensorBoard


class _CountingSummary:
    """Stands in for ``tf.summary``: counts ``scalar`` calls, forwards everything."""

    def __init__(self):
        self.scalars = 0

    def scalar(self, *args, **kwargs):
        self.scalars += 1
        return tf.summary.scalar(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(tf.summary, name)


def _run(callback, steps=3, epochs=2):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    callback.set_model(model)
    counting = _CountingSummary()
    callback._summary_module = counting
    callback.on_train_begin()
    per_step = []
    for epoch in range(epochs):
        callback.on_epoch_begin(epoch)
        for step in range(steps):
            callback.on_train_batch_begin(step)
            before = counting.scalars
            callback.on_train_batch_end(step, {"loss": 0.5 + step, "loss_d": 1.0})
            per_step.append(counting.scalars - before)
        callback.on_epoch_end(epoch, {"loss": float(epoch), "loss_d": 2.0 * epoch})
    callback.on_train_end()
    return per_step


def _scalars(logdir):
    values = {}
    for path in glob.glob(os.path.join(logdir, "train", "events.*")):
        events = event_accumulator.EventAccumulator(path, size_guidance={"tensors": 0})
        events.Reload()
        for tag in events.Tags()["tensors"]:
            values[tag] = [float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]
    return values


def test_epoch_tensorboard_skips_per_step_scalars_and_writes_the_epoch_ones(tmp_path):
    per_step = _run(EpochTensorBoard(str(tmp_path / "tb"), update_freq="epoch", write_graph=False))
    assert per_step == [0] * 6  # no summary call between two steps
    written = _scalars(str(tmp_path / "tb"))
    # What the stock callback writes per epoch, unchanged.
    stock = _run(
        keras.callbacks.TensorBoard(str(tmp_path / "stock"), update_freq="epoch", write_graph=False)
    )
    assert stock == [2] * 6  # Keras 3 calls scalar per log per step (to no writer)
    assert written == _scalars(str(tmp_path / "stock"))
    np.testing.assert_array_equal(written["epoch_loss"], [0.0, 1.0])
    assert not any(tag.startswith("batch_") for tag in written)


def test_epoch_tensorboard_still_writes_batches_at_a_batch_frequency(tmp_path):
    per_step = _run(EpochTensorBoard(str(tmp_path / "tb"), update_freq=1, write_graph=False))
    assert per_step == [2] * 6
    np.testing.assert_array_equal(_scalars(str(tmp_path / "tb"))["batch_loss"], [0.5, 1.5, 2.5] * 2)


class _MeanStep(keras.Model):
    """The least a trainer needs for ``run_epochs``: a ``train_step`` returning logs."""

    def train_step(self, batch):
        return {"loss": tf.reduce_mean(batch)}


def _run_epochs_with_clock(monkeypatch, seconds_to_close):
    """``run_epochs`` with a clock that makes closing the input pipeline take this long."""
    from mtsyn_tf.trainer import epoch_loop

    ticks = iter([0.0, seconds_to_close])  # the loop's own clock only
    monkeypatch.setattr(epoch_loop, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    dataset = tf.data.Dataset.range(100).map(lambda i: tf.cast(i, tf.float32)).batch(2)
    return epoch_loop.run_epochs(
        _MeanStep(),
        tf.distribute.get_strategy(),
        dataset,
        [],
        epochs=1,
        initial_epoch=0,
        steps_per_epoch=3,
    )


def test_a_slow_close_of_the_input_pipeline_is_logged(monkeypatch, caplog):
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.INFO)  # an earlier app.run may have raised it
    with caplog.at_level("WARNING"):
        logs = _run_epochs_with_clock(monkeypatch, 2.5)
    assert logs == {"loss": 4.5}  # batches [0, 1], [2, 3], [4, 5]: the last one's mean
    assert "Closing the training input pipeline took 2.5 s." in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        _run_epochs_with_clock(monkeypatch, 0.2)
    assert "Closing the training input pipeline" not in caplog.text
