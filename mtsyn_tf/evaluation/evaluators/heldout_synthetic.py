"""``heldout_synthetic``: the trainer's held-out metrics (eval.json's) for any run and split."""

from __future__ import annotations

import dataclasses

from mtsyn_tf.evaluation.evaluator import Evaluator
from mtsyn_tf.evaluation.report import Section, Table


@dataclasses.dataclass(frozen=True)
class HeldOutSyntheticEvaluator(Evaluator):
    """``synthetic_dir``: rendered shards with a held-out ``split``; ``max_batches``: only
    the first batches of ``batch_size`` images (smoke runs)."""

    name = "heldout_synthetic"
    title = "Held-out synthetic scenes"
    synthetic_dir: str | None = None
    split: str = "test"
    batch_size: int = 8
    max_batches: int | None = None

    def __post_init__(self):
        super().__post_init__()
        self.require("synthetic_dir", "synthetic shards with a held-out split")

    def run(self, target, report_dir):
        from mtsyn_tf.evaluation.heldout import heldout_metrics

        r = heldout_metrics(target.model, target.input_contract, self.synthetic_dir, self.split,
                            self.batch_size, self.max_batches)  # fmt: skip
        rows = [
            [k.split("_", 1)[0], k.split("_", 1)[1], v] for k, v in r.items() if k != "num_images"
        ]
        table = Table(
            f"{r['num_images']} images of split {self.split!r}",
            ["task", "metric", "value"],
            rows,
            digits=4,
        )
        text = ("Depth in metres (abs-rel, RMSE, δ<1.25), normals in degrees (mean / median "
                "angle, % within 11.25° / 22.5° / 30°), contours as pixel-exact AP and F at 0.5; "
                "pooled over every scored pixel, as in the run's eval.json.")  # fmt: skip
        return r, [Section("Held-out synthetic scenes", text, [table])]
