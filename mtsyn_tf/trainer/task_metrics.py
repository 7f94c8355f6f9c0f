"""Held-out metrics of the task heads in physical units, for the trainer's ``test_step``."""

from __future__ import annotations

from mtsyn_tf.metrics.keras_metrics import ContourMetrics, DepthMetrics, NormalAngleMetrics
from mtsyn_tf.models.multitask import to_physical

METRICS = {"depth": DepthMetrics, "normals": NormalAngleMetrics, "contour": ContourMetrics}


def task_metrics(tasks) -> dict:
    """``{task: metric}`` for each head of the model (depth, normals, contour order)."""
    return {task: metric(name=task) for task, metric in METRICS.items() if task in tasks}


def update_task_metrics(metrics: dict, synthetic: dict, predictions: dict) -> None:
    """Scores the heads' raw float32 outputs against the synthetic batch's ground truth."""
    physical = to_physical(predictions)
    for task, metric in metrics.items():
        # Depth and normals are scored on valid pixels; every pixel has a contour label.
        valid = None if task == "contour" else synthetic["valid"]
        metric.update_state(synthetic[task], physical[task], valid)


def task_metric_results(metrics: dict) -> dict:
    """``{"<task>_<key>": value}``, e.g. ``depth_abs_rel``."""
    return {
        f"{task}_{key}": value
        for task, metric in metrics.items()
        for key, value in metric.result().items()
    }
