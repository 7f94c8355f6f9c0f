"""``qualitative``: conv1 filters, prediction sheets (synthetic and real), nearest neighbours."""

from __future__ import annotations

import dataclasses

from mtsyn_tf.evaluation.evaluators.compared import HeldOutSyntheticSettings


@dataclasses.dataclass(frozen=True)
class QualitativeEvaluator(HeldOutSyntheticSettings):
    name = "qualitative"
    title = "Qualitative figures"

    def run(self, target, report_dir):
        from mtsyn_tf.evaluation import offline

        models = self.models(target)
        batch = self.batch(target)
        real = self.real_photos(target)
        section, results = offline.qualitative_section(
            models, target.name, target.info, batch, real["photos"], real["centre_crops"],
            self.split, self.synthetic_dir, report_dir,
        )  # fmt: skip
        return results, [section]
