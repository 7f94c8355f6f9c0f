"""Δ_MTL of a multi-task run over single-task runs, from the runs' ``eval.json`` files.

A training run writes ``<workdir>/eval.json`` with flat keys ``<task>_<metric>`` (e.g.
``depth_abs_rel``, ``normals_median``, ``contour_f_0_5``) plus ``loss_<task>``. A run's
tasks are those its trainer optimised (``config.json`` → ``trainer.tasks``, else the
preset's). Losses are not metrics and are ignored; each single-task run must train exactly
one task, and every task of the multi-task run needs one baseline.
"""

from __future__ import annotations

import json
import os

from mtsyn_tf.evaluation.report import Table
from mtsyn_tf.metrics import delta_mtl
from mtsyn_tf.metrics.multitask import HIGHER_IS_BETTER
from mtsyn_tf.models.presets import TASKS


def _read_json(path: str) -> dict:
    try:
        with open(path) as f:
            value = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(
            f"Missing or unreadable {os.path.basename(path)} ({err}). Received: {path}"
        ) from err
    if not isinstance(value, dict):
        raise ValueError(f"Expected a JSON object. Received: {path}")
    return value


def run_tasks(run_dir: str) -> tuple[str, ...]:
    """The tasks a run trained (``trainer.tasks`` of its config.json, else the preset's)."""
    config = _read_json(os.path.join(run_dir, "config.json"))
    tasks = config.get("trainer", {}).get("tasks")
    if tasks is None:
        preset = config.get("resolved_preset") or config.get("preset")
        tasks = preset.get("tasks") if isinstance(preset, dict) else None
    if not tasks:
        raise ValueError(f"config.json records no tasks. Received: {run_dir}")
    return tuple(tasks)


def run_metrics(run_dir: str, tasks=None) -> dict:
    """``{task: {metric: value}}`` from ``<run_dir>/eval.json`` for the run's tasks."""
    tasks = run_tasks(run_dir) if tasks is None else tuple(tasks)
    flat = _read_json(os.path.join(run_dir, "eval.json"))
    metrics = {}
    for task in tasks:
        prefix = f"{task}_"
        metrics[task] = {
            k[len(prefix) :]: float(v)
            for k, v in flat.items()
            if k.startswith(prefix) and k[len(prefix) :] in HIGHER_IS_BETTER
        }
        if not metrics[task]:
            raise ValueError(
                f"eval.json has no metric for task {task!r} (expected keys like "
                f"{prefix}abs_rel). Received: {run_dir} with keys {sorted(flat)}"
            )
    return metrics


def mtl_summary(multi_task_dir: str, single_task_dirs) -> dict:
    """Δ_MTL (percent, positive = multi-task better) with per-task and per-metric gains.

    Returns:
        ``delta_mtl``'s dict plus ``"multi_task"``/``"single_task"`` metrics and ``"runs"``.
    """
    multi = run_metrics(multi_task_dir)
    single, runs = {}, {"multi_task": multi_task_dir, "single_task": {}}
    for run_dir in single_task_dirs:
        tasks = run_tasks(run_dir)
        if len(tasks) != 1 or tasks[0] not in TASKS:
            raise ValueError(
                f"A single-task run must train exactly one task. Received: {run_dir} trains {tasks}"
            )
        if tasks[0] in single:
            raise ValueError(
                f"Two single-task runs for {tasks[0]!r}. Received: {runs['single_task'][tasks[0]]} and {run_dir}"
            )
        single.update(run_metrics(run_dir, tasks))
        runs["single_task"][tasks[0]] = run_dir
    # Compare on the metrics both report.
    multi = {t: {m: v for m, v in ms.items() if m in single.get(t, {})} for t, ms in multi.items()}
    result = delta_mtl(multi, single)
    return {**result, "multi_task": multi, "single_task": single, "runs": runs}


def mtl_table(summary: dict) -> Table:
    rows = []
    for task, metrics in summary["per_metric"].items():
        for metric, gain in metrics.items():
            rows.append([task, metric, summary["single_task"][task][metric],
                         summary["multi_task"][task][metric], gain])  # fmt: skip
        rows.append([task, "(task mean)", "", "", summary["per_task"][task]])
    rows.append(["all", "Δ_MTL", "", "", summary["delta_mtl"]])
    return Table("Multi-task vs single-task (gain in %, + = multi-task better)",
                 ["task", "metric", "single-task", "multi-task", "gain %"], rows)  # fmt: skip
