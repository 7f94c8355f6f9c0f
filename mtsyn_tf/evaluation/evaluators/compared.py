"""Settings shared by the offline protocols: the runs compared with the evaluated one."""

from __future__ import annotations

import dataclasses

from mtsyn_tf.evaluation.evaluator import Evaluator


@dataclasses.dataclass(frozen=True)
class ComparedRunsEvaluator(Evaluator):
    """``compare_workdirs``: other runs (e.g. no-DA) as a list of workdirs or {name: workdir};
    a random initialisation of the run's preset (seeded with ``seed``) is always compared."""

    compare_workdirs: dict | list | tuple | None = None
    seed: int = 0

    def models(self, target) -> dict:
        from mtsyn_tf.evaluation.offline import compared_models

        key = ("compared_models", repr(self.compare_workdirs), self.seed)
        return target.shared(key, lambda: compared_models(target, self.compare_workdirs, self.seed))

    def real_photos(self, target) -> dict:
        from mtsyn_tf.evaluation.offline import real_photo_crops

        size = target.model.image_size
        return target.shared(("real_photo_crops", size), lambda: real_photo_crops(size))


@dataclasses.dataclass(frozen=True)
class HeldOutSyntheticSettings(ComparedRunsEvaluator):
    """Plus ``num_synthetic`` held-out images of ``split`` in the shards ``synthetic_dir``."""

    synthetic_dir: str | None = None
    split: str = "test"
    num_synthetic: int = 32

    def __post_init__(self):
        super().__post_init__()
        self.require("synthetic_dir", "synthetic shards with a held-out split")
        if self.num_synthetic < 4:
            raise ValueError(
                f"Protocol {self.name!r}: num_synthetic must be >= 4. "
                f"Received: num_synthetic={self.num_synthetic}"
            )

    def batch(self, target) -> dict:
        from mtsyn_tf.evaluation.offline import synthetic_batch

        args = (self.synthetic_dir, self.split, self.num_synthetic, target.model.image_size)
        return target.shared(("synthetic_batch", *args), lambda: synthetic_batch(*args))
