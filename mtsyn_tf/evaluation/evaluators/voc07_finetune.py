"""``voc07_cls``: fine-tune on VOC07 trainval with the reference's recipe, test mAP."""

from __future__ import annotations

import dataclasses

from mtsyn_tf.evaluation.evaluators.transfer import FineTuningEvaluator
from mtsyn_tf.evaluation.report import Section, Table


@dataclasses.dataclass(frozen=True)
class VOC07FineTuneEvaluator(FineTuningEvaluator):
    """``steps`` / ``batch_size`` / ``learning_rate``: override the recipe's (smoke runs);
    ``test_crops``: which views ("ten" or "center") give the headline mAP."""

    name = "voc07_cls"
    title = "VOC07 classification"
    tfds_name: str = "voc/2007"
    steps: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    test_crops: str = "ten"

    def __post_init__(self):
        super().__post_init__()
        self.one_of("test_crops", ("ten", "center"))

    def run(self, target, report_dir):
        from mtsyn_tf.evaluation.voc_classification import finetune_voc07

        r = finetune_voc07(
            target.model, self.tfds_name, self.data_dir, steps=self.steps,
            batch_size=self.batch_size, learning_rate=self.learning_rate, rescale=self.rescale,
            test_crops=self.test_crops, grayscale=self.input_contract(target),
            convention=self.convention,
        )  # fmt: skip
        return r, [voc_map_section(self.tfds_name, r)]


def voc_map_section(tfds_name: str, r: dict) -> Section:
    table = Table(f"{tfds_name} classification ({r['protocol']}), AP convention {r['convention']}",
                  ["", "mAP"], [["all classes", r["map"]]])  # fmt: skip
    return Section(r["protocol"], tables=[table])
