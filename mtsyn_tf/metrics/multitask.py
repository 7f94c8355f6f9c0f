"""Δ_MTL: average relative gain of a multi-task model over single-task baselines.

Maninis et al. (CVPR 2019, "Attentive Single-Tasking of Multiple Tasks") and Vandenhende
et al. (TPAMI 2021, "Multi-Task Learning for Dense Prediction Tasks: A Survey"):

    Δ_MTL = 1/T · Σ_tasks  Δ_task,    Δ_task = 1/M_t · Σ_metrics (−1)^{l_j} (M_mt,j − M_st,j) / M_st,j

with ``l_j = 1`` when lower is better for metric ``j`` (errors), 0 when higher is better.
Following Vandenhende's reference code, the metrics of one task are averaged first, then
the tasks, so a task reported with five metrics does not outweigh one reported with one.
Values are returned in percent (positive = the multi-task model is better).
"""

from __future__ import annotations

import math

# Direction of every metric name this package produces (True = higher is better).
HIGHER_IS_BETTER = {
    # depth.py / DepthMetrics
    "abs_rel": False,
    "sq_rel": False,
    "rmse": False,
    "rmse_log": False,
    "log10": False,
    "scale_invariant": False,
    "delta1": True,
    "delta2": True,
    "delta3": True,
    # normals.py / NormalAngleMetrics
    "mean": False,
    "median": False,
    "pct_11_25": True,
    "pct_22_5": True,
    "pct_30": True,
    # contours.py / contour_proxy.py
    "ods": True,
    "ois": True,
    "ap": True,
    "f_0_5": True,
    "best_f": True,
    # classification.py
    "map": True,
}


def delta_mtl(multi_task: dict, single_task: dict, higher_is_better: dict | None = None) -> dict:
    """Relative multi-task gain in percent.

    Args:
        multi_task: ``{task: {metric: value}}`` of the multi-task model.
        single_task: the same structure for the single-task baselines; every metric of
            ``multi_task`` must be present here.
        higher_is_better: ``{metric: bool}`` overriding/extending ``HIGHER_IS_BETTER``.

    Returns:
        ``{"delta_mtl": float, "per_task": {task: float}, "per_metric": {task: {metric: float}}}``.
    """
    directions = {**HIGHER_IS_BETTER, **(higher_is_better or {})}
    if not multi_task:
        raise ValueError("multi_task must hold at least one task. Received: {}")
    per_metric: dict[str, dict[str, float]] = {}
    per_task: dict[str, float] = {}
    for task, metrics in multi_task.items():
        if task not in single_task:
            raise ValueError(
                f"no single-task baseline for task {task!r}. Received tasks: {sorted(single_task)}"
            )
        if not metrics:
            raise ValueError(f"task {task!r} has no metrics.")
        per_metric[task] = {}
        for name, value in metrics.items():
            if name not in directions:
                raise ValueError(
                    f"unknown direction for metric {name!r}; pass higher_is_better={{{name!r}: bool}}."
                )
            if name not in single_task[task]:
                raise ValueError(f"single-task baseline of {task!r} lacks metric {name!r}.")
            base = float(single_task[task][name])
            value = float(value)
            if base == 0 or not math.isfinite(base) or not math.isfinite(value):
                raise ValueError(
                    f"relative gain undefined for {task}/{name}: baseline={base}, multi-task={value}."
                )
            sign = 1.0 if directions[name] else -1.0
            per_metric[task][name] = 100.0 * sign * (value - base) / base
        per_task[task] = sum(per_metric[task].values()) / len(per_metric[task])
    return {
        "delta_mtl": sum(per_task.values()) / len(per_task),
        "per_task": per_task,
        "per_metric": per_metric,
    }
