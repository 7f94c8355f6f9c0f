"""``linear_probe``: frozen conv1..conv5, one logistic regression per tap (ImageNet / Places)."""

from __future__ import annotations

import dataclasses

from mtsyn_tf.evaluation.evaluator import Evaluator
from mtsyn_tf.evaluation.report import Section, Table


@dataclasses.dataclass(frozen=True)
class LinearProbeEvaluator(Evaluator):
    """``steps``: steps per epoch (default: the train split's size / ``batch_size``)."""

    name = "linear_probe"
    title = "Linear probes"
    tfds_name: str = "imagenet2012"
    data_dir: str | None = None
    batch_size: int = 64
    epochs: int = 10
    steps: int | None = None
    learning_rate: float = 0.01

    def run(self, target, report_dir):
        from mtsyn_tf.evaluation.linear_probe import linear_probe_tfds

        r = linear_probe_tfds(
            target.model, self.tfds_name, self.data_dir, batch_size=self.batch_size,
            epochs=self.epochs, steps_per_epoch=self.steps, grayscale=target.info["grayscale"],
            learning_rate=self.learning_rate,
        )  # fmt: skip
        table = Table(f"Linear probes on {self.tfds_name} ({r['test_split']}), top-1 %",
                      ["tap", "dims", "top-1 %"],
                      [[t, r["dims"][t], v] for t, v in r["top1"].items()], digits=2)  # fmt: skip
        return r, [Section("Linear probes", tables=[table])]
