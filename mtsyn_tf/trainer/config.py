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


STRATEGIES = ("auto", "one_device", "mirrored")
OPTIMIZERS = ("adam", "sgd")
# D: "sgd" is the reference code's SGD(momentum 0.9, weight decay 5e-4); "adam" the
# task optimizer's Adam (mtsyn_tf before issue 12).
DISC_OPTIMIZERS = ("sgd", "adam")


@dataclasses.dataclass
class RunConfig:
    """Everything a run needs; the resolved copy is written to ``<workdir>/config.json``."""

    workdir: str
    synthetic_dir: str
    real_source: str = "embedded"
    places365_data_dir: str | None = None
    preset: str = "paper_alexnet"
    preset_overrides: dict = dataclasses.field(default_factory=dict)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    batch_size: int = 28
    epochs: int = 30
    steps_per_epoch: int = 1000
    learning_rate: float = 1e-3
    beta_1: float = 0.5
    lr_drops: tuple = (0.6, 0.9)
    seed: int = 0
    deterministic: bool = True
    strategy: str = "auto"
    eval_split: str = "test"
    eval_batches: int | None = None
    image_summaries: bool = True
    verbose: int = 1
    # Scale, speed, robustness (README: "Distributed training, mixed precision, fault tolerance").
    precision: str = "float32"  # or "mixed": mixed_float16 on GPU, mixed_bfloat16 on CPU
    grad_accum_steps: int = 1  # micro-batches of batch_size per optimizer step
    nonfinite_policy: str = "stop"  # or "skip": roll back non-finite stages, count them
    optimizer: str = "adam"  # B and H; "sgd": plain SGD with the same schedule (comparisons)
    disc_optimizer: str = "sgd"  # D: reference SGD (momentum, weight decay); "adam": as B/H
    disc_momentum: float = 0.9
    disc_weight_decay: float = 5e-4
    # Augmentation (README "Deviations"): the same crop/flip policy for both domains and
    # no colour jitter by default; extra augmentation is opt-in per domain.
    min_scale: float = 0.5
    real_min_scale: float | None = None  # None: min_scale
    synthetic_jitter: bool = False
    real_jitter: bool = False
    jit_compile: bool = False  # XLA for the train step (one device only)
    profile_steps: tuple | None = None  # (START, STOP): profiler trace in <workdir>/profile
    restart: bool = False  # delete the run already in workdir and train from scratch

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["trainer"] = self.trainer.to_dict()
        d["lr_drops"] = list(self.lr_drops)
        d["profile_steps"] = None if self.profile_steps is None else list(self.profile_steps)
        return d
