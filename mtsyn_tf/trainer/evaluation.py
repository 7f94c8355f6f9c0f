"""The trainer's ``test_step``: held-out task losses and head metrics in physical units."""

from __future__ import annotations

import tensorflow as tf

from mtsyn_tf.metrics.keras_metrics import ContourMetrics, DepthMetrics, NormalAngleMetrics
from mtsyn_tf.models.multitask import to_physical
from mtsyn_tf.models.preprocessor import InputContract

METRICS = {"depth": DepthMetrics, "normals": NormalAngleMetrics, "contour": ContourMetrics}


def task_metrics(tasks) -> dict:
    """``{task: metric}`` for each head of the model (depth, normals, contour order)."""
    return {task: metric(name=task) for task, metric in METRICS.items() if task in tasks}


def evaluate_batch(trainer, data) -> dict:
    """Adds one synthetic batch to ``trainer``'s task-loss trackers and ``eval_metrics``.

    ``data`` is the synthetic part of a batch or the whole training structure. The heads
    see the run's test-time input contract (the channel mean for a grey-trained run) in
    inference mode. Returns ``{"loss_<task>", "<task>_<metric>"}`` so far this evaluation.
    """
    synthetic = data["synthetic"] if "synthetic" in data else data
    images = InputContract.for_grayscale(trainer.config.grayscale)(synthetic["image"])
    predictions = trainer.model(images, training=False)
    predictions = {k: tf.cast(v, tf.float32) for k, v in predictions.items()}
    results = {}
    for task in trainer.config.tasks:
        tracker = trainer.trackers[f"loss_{task}"]
        tracker.update_state(trainer.task_losses[task](synthetic, predictions[task]))
        results[f"loss_{task}"] = tracker.result()
    physical = to_physical(predictions)
    for task, metric in trainer.eval_metrics.items():
        # Depth and normals are scored on valid pixels; every pixel has a contour label.
        valid = None if task == "contour" else synthetic["valid"]
        metric.update_state(synthetic[task], physical[task], valid)
    for task, metric in trainer.eval_metrics.items():
        results.update({f"{task}_{key}": value for key, value in metric.result().items()})
    return results
