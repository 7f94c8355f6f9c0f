"""Depth / normals / contour metrics on held-out synthetic scenes, as the trainer reports them.

The trainer's ``test_step`` writes these numbers to ``<workdir>/eval.json`` at the end of a
run; this computes the same ones for any model and any split, with the same streaming
metrics (``mtsyn_tf.metrics.keras_metrics``: pooled over every scored pixel of the split),
the same input (``pipeline.make_eval_dataset``: centre square, no augmentation, fed
through the run's input contract) and the same keys (``<task>_<metric>``). Task losses,
which need the trainer's settings, are left out. With the whole split and one batch size
the numbers agree with eval.json to float32 rounding of the per-pixel terms.
"""

from __future__ import annotations

from mtsyn_tf.data import pipeline
from mtsyn_tf.metrics.keras_metrics import ContourMetrics, DepthMetrics, NormalAngleMetrics

TASK_METRICS = {"depth": DepthMetrics, "normals": NormalAngleMetrics, "contour": ContourMetrics}


def heldout_metrics(
    model, input_contract, synthetic_dir: str, split: str = "test", batch_size: int = 8,
    max_batches: int | None = None,
) -> dict:  # fmt: skip
    """``{"<task>_<metric>": value, ..., "num_images": N}`` over ``split`` of ``synthetic_dir``.

    ``input_contract``: the run's ``InputContract`` (the channel mean for a grey-trained
    run); ``max_batches``: only the first batches (smoke runs; then not eval.json's numbers).
    """
    dataset = pipeline.make_eval_dataset(
        synthetic_dir, split, batch_size=batch_size, image_size=model.image_size
    )
    if max_batches is not None:
        dataset = dataset.take(max_batches)
    metrics = {task: cls(name=task) for task, cls in TASK_METRICS.items() if task in model.tasks}
    count = 0
    for batch in dataset:
        physical = model.predict_physical(input_contract(batch["image"]))
        for task, metric in metrics.items():
            mask = () if task == "contour" else (batch["valid"],)
            metric.update_state(batch[task], physical[task], *mask)
        count += int(batch["image"].shape[0])
    if count == 0:
        raise ValueError(f"Split {split!r} of {synthetic_dir!r} holds no records.")
    results = {
        f"{task}_{key}": float(value)
        for task, metric in metrics.items()
        for key, value in metric.result().items()
    }
    return {**results, "num_images": count}
