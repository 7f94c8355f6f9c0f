"""``nyud_normals``: fine-tune the normals head on NYUD v2's 795 images, score the 654."""

from __future__ import annotations

import dataclasses

from mtsyn_tf.evaluation.evaluator import Evaluator
from mtsyn_tf.evaluation.report import Section, Table

METRICS = ("mean", "median", "pct_11_25", "pct_22_5", "pct_30")


@dataclasses.dataclass(frozen=True)
class NYUDNormalsEvaluator(Evaluator):
    """``nyud_mat``: nyu_depth_v2_labeled.mat (v7.3); ``nyud_splits``: splits.mat;
    ``max_train`` / ``max_test``: first N images only (smoke runs)."""

    name = "nyud_normals"
    title = "NYUD v2 surface normals"
    nyud_mat: str | None = None
    nyud_splits: str | None = None
    steps: int = 1000
    batch_size: int = 8
    learning_rate: float = 1e-4
    max_train: int | None = None
    max_test: int | None = None

    def __post_init__(self):
        super().__post_init__()
        self.require("nyud_mat", "the path of nyu_depth_v2_labeled.mat")
        self.require("nyud_splits", "the path of splits.mat")

    def run(self, target, report_dir):
        from mtsyn_tf.evaluation.nyud_normals import nyud_normals

        r = nyud_normals(
            target.model, self.nyud_mat, self.nyud_splits, steps=self.steps,
            batch_size=self.batch_size, learning_rate=self.learning_rate,
            grayscale=target.info["grayscale"], max_train=self.max_train, max_test=self.max_test,
        )  # fmt: skip
        table = Table("NYUD v2 test normals (degrees / %)", ["metric", "value"],
                      [[k, r["metrics"][k]] for k in METRICS if k in r["metrics"]])  # fmt: skip
        text = f"Ground truth: {r['ground_truth']}. Evaluation: {r['evaluation']}."
        return r, [Section("NYUD normals", text, [table])]
