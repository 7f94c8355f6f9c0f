"""Trainer and run settings: the paper's Algorithm 1, every ablation it reports, and the run.

Each setting is defined once, here: its type, default, help text and allowed values (the
field's metadata, see ``setting``). ``scripts/train.py``'s flags are generated from these
fields (``mtsyn_tf.configs.flags``) and the named experiments (``mtsyn_tf.configs``) are
values of these classes.
"""

from __future__ import annotations

import dataclasses

from mtsyn_tf.data.record_cache import DEFAULT_CACHE_MB
from mtsyn_tf.losses.contour import NORMALIZATIONS
from mtsyn_tf.models.presets import DA_TAPS, TASKS, preset_names
from mtsyn_tf.trainer.precision import PRECISIONS
from mtsyn_tf.trainer.schedule import LR_SCHEDULES

# λd, λs and the adversarial weight are the reference code's (SPEC §3; the paper gives
# none). λe = 3 (reference: 1, with its differently scaled edge loss) goes with the contour
# loss divided by the number of edge pixels: it puts the contour gradient on B between
# depth's and normals' at initialisation (README "Loss scales"; scripts/diagnose.py).
DEFAULT_LOSS_WEIGHTS = {"contour": 3.0, "depth": 5.0, "normals": 10.0, "adversarial": 0.05}
LOSS_WEIGHT_HELP = {
    "contour": "λe: weight of the contour loss.",
    "depth": "λd: weight of the depth loss.",
    "normals": "λs: weight of the surface-normal loss.",
    "adversarial": "Weight of the adversarial (fool D) term of L_BH.",
}
# What D reads at its tap: the BN output before the ReLU (reference code) or after it.
DISC_FEATURES = ("pre_activation", "post_relu")
# What the step does with a non-finite loss or gradient (trainer/guarded_update.py).
NONFINITE_POLICIES = ("stop", "skip")
ALL_DA_TAPS = tuple(sorted({tap for taps in DA_TAPS.values() for tap in taps}))


def setting(
    default=dataclasses.MISSING,
    *,
    help: str,  # noqa: A002 - the flag's help text
    choices=None,
    factory=None,
    flag: str | None = None,
    follows: str | None = None,
    cli_default=None,
    keys: tuple | None = None,
    key_help: dict | None = None,
):
    """A dataclass field that carries its command-line description.

    Args:
        help: the flag's help text (``--helpfull``) and the field's documentation.
        choices: allowed values (a tuple, or a zero-argument callable returning one when
            the values live in a module that imports this one).
        factory: ``default_factory`` for mutable defaults.
        flag: the flag's name when it is not the field's name.
        follows: dotted path of the field this one copies when that one is set and this
            one is not (``trainer.seed`` follows ``seed``); such a field has no flag.
        cli_default: the flag's default for a field without one (``workdir``).
        keys, key_help: a dict field set key by key, one flag per key (``flag`` is then a
            pattern with ``{key}``, e.g. ``w_{key}``).
    """
    metadata = {
        "help": help,
        "choices": choices,
        "flag": flag,
        "follows": follows,
        "cli_default": cli_default,
        "keys": keys,
        "key_help": key_help,
    }
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def field_choices(field: dataclasses.Field):
    choices = field.metadata.get("choices")
    return choices() if callable(choices) else choices


@dataclasses.dataclass
class TrainerConfig:
    """What one training run optimises (paper Algorithm 1 and its §4.5 ablations)."""

    tasks: tuple[str, ...] = setting(
        TASKS,
        choices=TASKS,
        help="Task heads trained on synthetic images (single-task ablations: one of them).",
    )
    adapt: bool = setting(
        True,
        help="Adversarial feature-space domain adaptation (False: the 'no adaptation' ablation).",
    )
    da_tap: str | None = setting(
        None,
        choices=ALL_DA_TAPS,
        help="Feature tap D looks at: conv1 / conv4 / conv5 / fc6 (the paper's 'conv6') for "
        "AlexNet, conv5_3 for VGG16. Default (None): the preset's, conv5 / conv5_3.",
    )
    bi_fool: bool = setting(
        False,
        help="Fool D both ways (paper §4.5, Table 4 row 9): stage 1 also pushes real features "
        "toward 'synthetic', i.e. adds −Σ_j log D(z_yj) to L_BH, so real images update B too.",
    )
    update_base_with_real: bool = setting(
        False,
        help="The paper's §3.2 name of the --bi_fool loss ('we also tried updating B with real "
        "images by adding −Σ_j log D(z_yj) to L_BH'); either flag turns that term on.",
    )
    loss_weights: dict = setting(
        factory=lambda: dict(DEFAULT_LOSS_WEIGHTS),
        flag="w_{key}",
        keys=tuple(DEFAULT_LOSS_WEIGHTS),
        key_help=LOSS_WEIGHT_HELP,
        help="λ for contour / depth / normals / adversarial.",
    )
    contour_normalization: str = setting(
        "edges",
        choices=NORMALIZATIONS,
        help="Contour loss scale: 'edges' (class-balanced sum / #edge pixels, so its gradients "
        "on B are of the order of depth's and normals'), 'pixels' (/ #pixels, before issue 12), "
        "'reference' (the reference code's #non-edge/#edge-weighted BCE).",
    )
    disc_features: str = setting(
        "pre_activation",
        choices=DISC_FEATURES,
        help="What D reads at its tap: the BN output before the ReLU ('pre_activation', "
        "reference code) or after it ('post_relu', mtsyn_tf before issue 12).",
    )
    pool_size: int = setting(128, help="D's history pool of past synthetic features (0 disables).")
    pool_swap_prob: float = setting(0.5, help="History pool swap probability.")
    grayscale: bool = setting(
        True, help="The paper's input: one random RGB channel repeated three times."
    )
    min_edge_pixels: int = setting(
        350,
        help="The input pipeline replaces a synthetic image with fewer contour pixels by "
        "another random one (reference: 350; 0 keeps every image).",
    )
    seed: int = setting(
        0,
        follows="seed",
        help="Base seed of the in-step randomness (grayscale channel, pool); set with the "
        "run's seed.",
    )

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

    workdir: str = setting(
        cli_default="workspace/runs/default",
        help="Run directory (config, checkpoints, TensorBoard, exports).",
    )
    synthetic_dir: str = setting(
        cli_default="workspace/data/synthetic/demo", help="Directory of synthetic TFRecord shards."
    )
    real_source: str = setting(
        "embedded",
        help="'embedded' (photos shipped with scikit-image/-learn), 'places365', a photo folder "
        "or real shards.",
    )
    places365_data_dir: str | None = setting(None, help="tfds data_dir holding places365_small.")
    preset: str = setting("paper_alexnet", choices=preset_names, help="Model preset.")
    preset_overrides: dict = setting(
        factory=dict,
        help="JSON dict of preset fields to override, e.g. '{\"decoder_width\": 32}'.",
    )
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    batch_size: int = setting(
        28, help="Per-replica batch size for each domain (reference: 28 × 8 GPUs)."
    )
    epochs: int = setting(30, help="Epochs (checkpoints and resume points are at epoch ends).")
    steps_per_epoch: int = setting(1000, help="Training steps per epoch.")
    learning_rate: float = setting(1e-3, help="Base learning rate of all three optimizers.")
    beta_1: float = setting(0.5, help="Adam β1.")
    lr_drops: tuple[float, ...] = setting(
        (0.6, 0.9),
        help="Fractions of training where the LR is multiplied by 0.1 (--lr_schedule=step).",
    )
    lr_schedule: str = setting(
        "step",
        choices=LR_SCHEDULES,
        help="'step': ×0.1 at each of --lr_drops (reference code); 'cosine': linear warmup over "
        "--warmup_fraction of training, then cosine decay to 0 (opt-in for short runs). All "
        "three optimizers follow it.",
    )
    warmup_fraction: float = setting(
        0.0, help="Fraction of training the LR warms up linearly (--lr_schedule=cosine)."
    )
    seed: int = setting(
        0, help="Seed of initialisation, data order, augmentation and in-step randomness."
    )
    deterministic: bool = setting(True, help="Deterministic ops and data order (exact resume).")
    strategy: str = setting(
        "auto", choices=STRATEGIES, help="tf.distribute strategy ('auto': mirrored on >1 GPU)."
    )
    eval_split: str = setting(
        "test", help="Held-out synthetic split evaluated at the end ('none': skip)."
    )
    eval_batches: int | None = setting(
        None, help="Batches of --eval_split evaluated at the end (default: all of it)."
    )
    image_summaries: bool = setting(
        True, help="Write prediction images to TensorBoard at each epoch end."
    )
    verbose: int = setting(1, help="Keras verbosity (1: progress bar, 2: one line per epoch).")
    # Scale, speed, robustness (README: "Distributed training, mixed precision, fault tolerance").
    precision: str = setting(
        "float32",
        choices=PRECISIONS,
        help="'mixed': mixed_float16 on GPU, mixed_bfloat16 on CPU.",
    )
    grad_accum_steps: int = setting(
        1,
        help="Accumulate both stages' gradients over k micro-batches of --batch_size per update "
        "(effective batch = batch_size × replicas × k; BatchNorm still sees micro-batches).",
    )
    nonfinite_policy: str = setting(
        "stop",
        choices=NONFINITE_POLICIES,
        help="'stop': stop at the first NaN/Inf loss; 'skip': roll back that stage's update "
        "and count it.",
    )
    optimizer: str = setting(
        "adam",
        choices=OPTIMIZERS,
        help="B/H optimizer ('sgd': plain SGD with the same schedule, for comparisons).",
    )
    disc_optimizer: str = setting(
        "sgd",
        choices=DISC_OPTIMIZERS,
        help="D's optimizer: 'sgd' (reference: momentum, weight decay) or 'adam' (as B/H).",
    )
    disc_momentum: float = setting(0.9, help="Momentum of D's SGD.")
    disc_weight_decay: float = setting(
        5e-4, help="L2 weight decay of D's SGD (added to gradients)."
    )
    # Augmentation (README "Deviations"): the same crop/flip policy for both domains and
    # no colour jitter by default; extra augmentation is opt-in per domain.
    min_scale: float = setting(0.5, help="Smallest random crop side / short side, both domains.")
    real_min_scale: float | None = setting(
        None, help="Smallest crop side for real photos only (default: --min_scale)."
    )
    synthetic_jitter: bool = setting(False, help="Colour jitter on synthetic images (opt-in).")
    real_jitter: bool = setting(False, help="Colour jitter on real photos (opt-in).")
    data_cache_mb: float = setting(
        DEFAULT_CACHE_MB,
        help="Memory (MB) for holding decoded training records, so a step pays only for "
        "augmentation; data that does not fit is decoded every step. 0: off. Same batches.",
    )
    jit_compile: bool = setting(False, help="XLA-compile the train step (one device only).")
    profile_steps: tuple[int, ...] | None = setting(
        None, help="START,STOP: write a TensorBoard profiler trace to <workdir>/profile."
    )
    restart: bool = setting(
        False,
        help="Delete the run already in --workdir (checkpoints, history, config.json, exports) "
        "and train from scratch. Without it, a --workdir whose config.json records other "
        "settings (batch size, seed, steps, data, ...) is refused instead of resumed.",
    )

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["trainer"] = self.trainer.to_dict()
        d["lr_drops"] = list(self.lr_drops)
        d["profile_steps"] = None if self.profile_steps is None else list(self.profile_steps)
        return d
