"""``voc07_svm``: per-class linear SVMs on frozen features of one tap, VOC07 test mAP."""

from __future__ import annotations

import dataclasses

from mtsyn_tf.evaluation.evaluator import Evaluator
from mtsyn_tf.evaluation.evaluators.transfer import CONVENTIONS
from mtsyn_tf.evaluation.evaluators.voc07_finetune import voc_map_section


@dataclasses.dataclass(frozen=True)
class VOC07SVMEvaluator(Evaluator):
    name = "voc07_svm"
    title = "VOC07 classification"
    tfds_name: str = "voc/2007"
    data_dir: str | None = None
    tap: str = "fc7"
    convention: str = "voc07_11point"

    def __post_init__(self):
        super().__post_init__()
        self.one_of("convention", CONVENTIONS)

    def run(self, target, report_dir):
        from mtsyn_tf.evaluation.voc_classification import voc07_svm

        r = voc07_svm(target.model, self.tfds_name, self.data_dir, tap=self.tap,
                      grayscale=target.info["grayscale"], convention=self.convention)  # fmt: skip
        return r, [voc_map_section(self.tfds_name, r)]
