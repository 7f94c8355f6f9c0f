"""Trainer settings: the paper's Algorithm 1 and every ablation it reports, by field."""

from __future__ import annotations

import dataclasses

from mtsyn_tf.losses.contour import NORMALIZATIONS
from mtsyn_tf.models.presets import DA_TAPS, TASKS

# λd, λs and the adversarial weight are the reference code's (SPEC §3; the paper gives
# none). λe = 3 (reference: 1, with its differently scaled edge loss) goes with the contour
# loss divided by the number of edge pixels: it puts the contour gradient on B between
# depth's and normals' at initialisation (README "Loss scales"; scripts/diagnose.py).
DEFAULT_LOSS_WEIGHTS = {"contour": 3.0, "depth": 5.0, "normals": 10.0, "adversarial": 0.05}
# What D reads at its tap: the BN output before the ReLU (reference code) or after it.
DISC_FEATURES = ("pre_activation", "post_relu")


@dataclasses.dataclass
class TrainerConfig:
    """What one training run optimises.

    Attributes:
        tasks: task heads trained on synthetic images (single-task ablations: one of them).
        adapt: adversarial feature-space domain adaptation on/off ("no adaptation" ablation).
        da_tap: feature tap D looks at: conv1 / conv4 / conv5 (default) / fc6 (the paper's
            "conv6") for AlexNet; conv5_3 for VGG16. None means the preset's default.
        bi_fool: "fool the discriminator both ways" (paper §4.5, Table 4 row 9): stage 1
            also pushes real features toward "synthetic", i.e. adds ``−Σ_j log D(z_yj)``
            to L_BH, so real images update B too.
        update_base_with_real: the paper's §3.2 wording of the same loss ("we also tried
            updating B with real images by adding −Σ_j log D(z_yj) to L_BH"); either flag
            turns that term on. Both are kept so either of the paper's names works.
        loss_weights: λ for contour / depth / normals / adversarial.
        contour_normalization: how the class-balanced contour loss is scaled
            (``losses.contour.NORMALIZATIONS``): "edges" (default) divides by the number
            of edge pixels, so its gradients on B are of the order of depth's and
            normals'; "pixels" is the old per-pixel mean; "reference" the reference
            code's (#non-edge/#edge)-weighted BCE.
        disc_features: "pre_activation" (default, reference code): D reads the tap's BN
            output before the ReLU; "post_relu": after it (mtsyn_tf before issue 12).
        pool_size, pool_swap_prob: D's history pool of past synthetic features (0 disables).
        grayscale: the paper's input: one random RGB channel repeated three times.
        min_edge_pixels: the input pipeline replaces a synthetic image with fewer contour
            pixels by another random one (reference: 350; 0 keeps every image).
        seed: base seed of the in-step randomness (grayscale channel, pool).
    """

    tasks: tuple = TASKS
    adapt: bool = True
    da_tap: str | None = None
    bi_fool: bool = False
    update_base_with_real: bool = False
    loss_weights: dict = dataclasses.field(default_factory=lambda: dict(DEFAULT_LOSS_WEIGHTS))
    contour_normalization: str = "edges"
    disc_features: str = "pre_activation"
    pool_size: int = 128
    pool_swap_prob: float = 0.5
    grayscale: bool = True
    min_edge_pixels: int = 350
    seed: int = 0

    def validate(self, arch: str, model_tasks) -> TrainerConfig:
        tasks = tuple(self.tasks)
        if len(set(tasks)) != len(tasks) or any(t not in TASKS for t in tasks):
            raise ValueError(
                f"tasks must be a subset of {TASKS} without repeats. Received: tasks={tasks}"
            )
        missing = [t for t in tasks if t not in model_tasks]
        if missing:
            raise ValueError(
                f"The model has no head for {missing} (its tasks: {tuple(model_tasks)}). Received: tasks={tasks}"
            )
        unknown = set(self.loss_weights) - {*TASKS, "adversarial"}
        if unknown:
            raise ValueError(
                f"Unknown loss_weights keys {sorted(unknown)}. Received: {self.loss_weights}"
            )
        for key, value in self.loss_weights.items():
            if not value >= 0:
                raise ValueError(f"loss weights must be >= 0. Received: {key}={value}")
        active = [t for t in tasks if self.loss_weights.get(t, 0.0) > 0]
        adversarial_on = self.adapt and self.loss_weights.get("adversarial", 0.0) > 0
        if not active and not adversarial_on:
            raise ValueError(
                "Nothing to train: every task is off or has loss weight 0 and domain adaptation "
                f"is off. Received: tasks={tasks}, adapt={self.adapt}, loss_weights={self.loss_weights}"
            )
        if self.da_tap is not None and self.da_tap not in DA_TAPS[arch]:
            raise ValueError(
                f"Unknown domain-adaptation tap for {arch}. Expected one of {DA_TAPS[arch]}. "
                f"Received: da_tap={self.da_tap!r}"
            )
        if (self.bi_fool or self.update_base_with_real) and not self.adapt:
            raise ValueError(
                "bi_fool and update_base_with_real modify the adversarial loss; they need adapt=True. "
                f"Received: adapt={self.adapt}, bi_fool={self.bi_fool}, "
                f"update_base_with_real={self.update_base_with_real}"
            )
        if self.contour_normalization not in NORMALIZATIONS:
            raise ValueError(
                f"contour_normalization must be one of {NORMALIZATIONS}. "
                f"Received: contour_normalization={self.contour_normalization!r}"
            )
        if self.disc_features not in DISC_FEATURES:
            raise ValueError(
                f"disc_features must be one of {DISC_FEATURES}. "
                f"Received: disc_features={self.disc_features!r}"
            )
        if self.min_edge_pixels < 0:
            raise ValueError(f"min_edge_pixels must be >= 0. Received: {self.min_edge_pixels}")
        return self

    @property
    def real_images_update_base(self) -> bool:
        """Whether L_BH has the real-image term (bi-fool / update-B-with-real)."""
        return self.bi_fool or self.update_base_with_real

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["tasks"] = list(self.tasks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainerConfig:
        d = dict(d)
        d["tasks"] = tuple(d.get("tasks", TASKS))
        return cls(**d)
