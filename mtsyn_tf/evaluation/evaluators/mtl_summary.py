"""``mtl_summary``: Δ_MTL of the run over one single-task run per task (from eval.json)."""

from __future__ import annotations

import dataclasses

from mtsyn_tf.evaluation.evaluator import Evaluator
from mtsyn_tf.evaluation.report import Section


@dataclasses.dataclass(frozen=True)
class MultiTaskSummaryEvaluator(Evaluator):
    """``single_task_workdirs``: one single-task run per task of the evaluated run."""

    name = "mtl_summary"
    title = "Multi-task vs single-task"
    single_task_workdirs: tuple | list = ()

    def run(self, target, report_dir):
        from mtsyn_tf.evaluation.multitask_summary import mtl_summary, mtl_table

        summary = mtl_summary(target.require_path(self.name), self.single_task_workdirs)
        return summary, [Section("Δ_MTL", tables=[mtl_table(summary)])]
