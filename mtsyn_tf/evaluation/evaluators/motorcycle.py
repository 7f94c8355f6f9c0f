"""``motorcycle``: metric depth on Middlebury's motorcycle (ships with scikit-image)."""

from __future__ import annotations

import dataclasses

from mtsyn_tf.evaluation.evaluators.compared import ComparedRunsEvaluator


@dataclasses.dataclass(frozen=True)
class MotorcycleEvaluator(ComparedRunsEvaluator):
    """Results: ``{model: {raw, median_scaled, ...}}`` for every compared model with depth."""

    name = "motorcycle"
    title = "Metric depth on a real photo"

    def run(self, target, report_dir):
        from mtsyn_tf.evaluation import offline

        section, results = offline.motorcycle_section(self.models(target), report_dir)
        return results, [] if section is None else [section]
