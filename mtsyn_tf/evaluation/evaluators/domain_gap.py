"""``domain_gap``: proxy A-distance per tap between held-out synthetic and real photos."""

from __future__ import annotations

import dataclasses

from mtsyn_tf.evaluation.evaluators.compared import HeldOutSyntheticSettings


@dataclasses.dataclass(frozen=True)
class DomainGapEvaluator(HeldOutSyntheticSettings):
    """Results: ``{model: {tap: {pad, error, num_train, num_test}}}`` for every compared model."""

    name = "domain_gap"
    title = "Synthetic-vs-real domain gap"

    def run(self, target, report_dir):
        from mtsyn_tf.evaluation import offline

        models = self.models(target)
        batch = self.batch(target)
        real = self.real_photos(target)
        taps, da_tap = offline.domain_gap_taps(target.model)
        section, table = offline.gap_section(
            models, batch["image"], real["images"], real["groups"], taps, da_tap, report_dir,
            self.seed,
        )  # fmt: skip
        return table, [section]
