"""Trains the multi-task adversarial network (paper Algorithm 1).

Examples:
  # The paper's recipe (AlexNet-BN, batch 28 per replica, 30 epochs, B/H: Adam 1e-3 β1 0.5,
  # D: SGD 1e-3 momentum 0.9 weight decay 5e-4):
  python scripts/train.py --synthetic_dir=workspace/data/synthetic/suncg_like \
      --real_source=places365 --places365_data_dir=~/tensorflow_datasets \
      --workdir=workspace/runs/paper --steps_per_epoch=5000

  # A few minutes on a laptop CPU with the embedded data:
  python scripts/train.py --preset=small --synthetic_dir=workspace/data/synthetic/demo \
      --workdir=workspace/runs/small --batch_size=8 --epochs=4 --steps_per_epoch=25

Re-running the same command resumes from the last checkpoint in --workdir.
"""

from __future__ import annotations

import json

from absl import flags

from mtsyn_tf import runtime
from mtsyn_tf.cli import run
from mtsyn_tf.losses.contour import NORMALIZATIONS
from mtsyn_tf.models.presets import DA_TAPS, TASKS, preset_names
from mtsyn_tf.trainer.callbacks import NonFiniteLossError
from mtsyn_tf.trainer.checkpointing import CheckpointSaveError
from mtsyn_tf.trainer.config import (
    DEFAULT_LOSS_WEIGHTS,
    DISC_FEATURES,
    DISC_OPTIMIZERS,
    OPTIMIZERS,
    STRATEGIES,
    RunConfig,
    TrainerConfig,
)
from mtsyn_tf.trainer.loop import train
from mtsyn_tf.trainer.mtl_adversarial import NONFINITE_POLICIES
from mtsyn_tf.trainer.precision import PRECISIONS

_ALL_TAPS = sorted({t for taps in DA_TAPS.values() for t in taps})

FLAGS = flags.FLAGS
flags.DEFINE_enum("preset", "paper_alexnet", preset_names(), "Model preset.")
flags.DEFINE_string(
    "preset_overrides",
    "{}",
    "JSON dict of preset fields to override, e.g. '{\"decoder_width\": 32}'.",
)
flags.DEFINE_string(
    "synthetic_dir", "workspace/data/synthetic/demo", "Directory of synthetic TFRecord shards."
)
flags.DEFINE_string(
    "real_source",
    "embedded",
    "'embedded' (photos shipped with scikit-image/-learn), 'places365', a photo folder or real shards.",
)
flags.DEFINE_string("places365_data_dir", None, "tfds data_dir holding places365_small.")
flags.DEFINE_string(
    "workdir",
    "workspace/runs/default",
    "Run directory (config, checkpoints, TensorBoard, exports).",
)
flags.DEFINE_bool(
    "restart",
    False,
    "Delete the run already in --workdir (checkpoints, history, config.json, exports) and "
    "train from scratch. Without it, a --workdir whose config.json records other settings "
    "(batch size, seed, steps, data, ...) is refused instead of resumed.",
)
flags.DEFINE_integer(
    "batch_size", 28, "Per-replica batch size for each domain (reference: 28 × 8 GPUs)."
)
flags.DEFINE_integer("epochs", 30, "Epochs (checkpoints and resume points are at epoch ends).")
flags.DEFINE_integer("steps_per_epoch", 1000, "Training steps per epoch.")
flags.DEFINE_float("learning_rate", 1e-3, "Base learning rate of both optimizers.")
flags.DEFINE_float("beta_1", 0.5, "Adam β1.")
flags.DEFINE_list(
    "lr_drops", ["0.6", "0.9"], "Fractions of training where the LR is multiplied by 0.1."
)
flags.DEFINE_integer("seed", 0, "Seed of data order, augmentation and in-step randomness.")
flags.DEFINE_bool("deterministic", True, "Deterministic ops and data order (exact resume).")
flags.DEFINE_enum(
    "strategy", "auto", STRATEGIES, "tf.distribute strategy ('auto': mirrored on >1 GPU)."
)
# Ablations (paper §4.5).
flags.DEFINE_list("tasks", list(TASKS), "Tasks to train (single-task ablations: one of them).")
flags.DEFINE_bool(
    "adapt", True, "Adversarial domain adaptation (False: the 'no adaptation' ablation)."
)
flags.DEFINE_enum("da_tap", None, _ALL_TAPS, "Feature tap for D (default: the preset's, conv5).")
flags.DEFINE_bool(
    "bi_fool",
    False,
    'Fool D both ways: also push real features toward "synthetic" (paper Table 4 row 9).',
)
flags.DEFINE_bool(
    "update_base_with_real",
    False,
    "Paper §3.2 name of the --bi_fool loss: add −Σ log D(z_y) to L_BH.",
)
flags.DEFINE_float("w_contour", DEFAULT_LOSS_WEIGHTS["contour"], "λe.")
flags.DEFINE_float("w_depth", DEFAULT_LOSS_WEIGHTS["depth"], "λd.")
flags.DEFINE_float("w_normals", DEFAULT_LOSS_WEIGHTS["normals"], "λs.")
flags.DEFINE_float("w_adversarial", DEFAULT_LOSS_WEIGHTS["adversarial"], "Adversarial weight.")
flags.DEFINE_enum(
    "contour_normalization",
    "edges",
    NORMALIZATIONS,
    "Contour loss scale: 'edges' (class-balanced sum / #edge pixels), 'pixels' (/ #pixels, "
    "before issue 12), 'reference' (the reference code's #non-edge/#edge-weighted BCE).",
)
flags.DEFINE_enum(
    "disc_features",
    "pre_activation",
    DISC_FEATURES,
    "What D reads at its tap: the BN output before the ReLU (reference code) or after it.",
)
flags.DEFINE_integer("pool_size", 128, "D's history pool of synthetic features (0 disables).")
flags.DEFINE_float("pool_swap_prob", 0.5, "History pool swap probability.")
flags.DEFINE_bool("grayscale", True, "Paper input: one random RGB channel repeated 3 times.")
flags.DEFINE_integer(
    "min_edge_pixels",
    350,
    "Replace synthetic images with fewer contour pixels by another random one (0: keep all).",
)
# Augmentation: the same crop/flip policy for both domains, no colour jitter (default).
flags.DEFINE_float("min_scale", 0.5, "Smallest random crop side / short side, both domains.")
flags.DEFINE_float(
    "real_min_scale", None, "Smallest crop side for real photos only (default: --min_scale)."
)
flags.DEFINE_bool("synthetic_jitter", False, "Colour jitter on synthetic images (opt-in).")
flags.DEFINE_bool("real_jitter", False, "Colour jitter on real photos (opt-in).")
flags.DEFINE_string("eval_split", "test", "Held-out synthetic split evaluated at the end.")
flags.DEFINE_integer("verbose", 1, "Keras verbosity (1: progress bar, 2: one line per epoch).")
# Scale, speed, robustness.
flags.DEFINE_enum(
    "precision", "float32", PRECISIONS, "'mixed': mixed_float16 on GPU, mixed_bfloat16 on CPU."
)
flags.DEFINE_integer(
    "grad_accum_steps",
    1,
    "Accumulate both stages' gradients over k micro-batches of --batch_size per update "
    "(effective batch = batch_size × replicas × k; BatchNorm still sees micro-batches).",
)
flags.DEFINE_enum(
    "nonfinite_policy",
    "stop",
    NONFINITE_POLICIES,
    "'stop': stop at the first NaN/Inf loss; 'skip': roll back that stage's update and count it.",
)
flags.DEFINE_enum("optimizer", "adam", OPTIMIZERS, "B/H optimizer (sgd: for comparisons).")
flags.DEFINE_enum(
    "disc_optimizer",
    "sgd",
    DISC_OPTIMIZERS,
    "D's optimizer: 'sgd' (reference: momentum 0.9, weight decay 5e-4) or 'adam' (as B/H).",
)
flags.DEFINE_float("disc_momentum", 0.9, "Momentum of D's SGD.")
flags.DEFINE_float("disc_weight_decay", 5e-4, "L2 weight decay of D's SGD (added to gradients).")
flags.DEFINE_bool("jit_compile", False, "XLA-compile the train step (one device only).")
flags.DEFINE_list(
    "profile_steps", [], "START,STOP: write a TensorBoard profiler trace to <workdir>/profile."
)


def run_config_from_flags() -> RunConfig:
    try:
        overrides = json.loads(FLAGS.preset_overrides)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"--preset_overrides must be a JSON object. Received: {FLAGS.preset_overrides!r} ({err})"
        ) from None
    try:
        drops = tuple(float(x) for x in FLAGS.lr_drops)
    except ValueError:
        raise ValueError(f"--lr_drops must be numbers. Received: {FLAGS.lr_drops}") from None
    trainer = TrainerConfig(
        tasks=tuple(FLAGS.tasks),
        adapt=FLAGS.adapt,
        da_tap=FLAGS.da_tap,
        bi_fool=FLAGS.bi_fool,
        update_base_with_real=FLAGS.update_base_with_real,
        loss_weights={
            "contour": FLAGS.w_contour,
            "depth": FLAGS.w_depth,
            "normals": FLAGS.w_normals,
            "adversarial": FLAGS.w_adversarial,
        },
        contour_normalization=FLAGS.contour_normalization,
        disc_features=FLAGS.disc_features,
        pool_size=FLAGS.pool_size,
        pool_swap_prob=FLAGS.pool_swap_prob,
        grayscale=FLAGS.grayscale,
        min_edge_pixels=FLAGS.min_edge_pixels,
        seed=FLAGS.seed,
    )
    return RunConfig(
        workdir=FLAGS.workdir,
        synthetic_dir=FLAGS.synthetic_dir,
        real_source=FLAGS.real_source,
        places365_data_dir=FLAGS.places365_data_dir,
        preset=FLAGS.preset,
        preset_overrides=overrides,
        trainer=trainer,
        batch_size=FLAGS.batch_size,
        epochs=FLAGS.epochs,
        steps_per_epoch=FLAGS.steps_per_epoch,
        learning_rate=FLAGS.learning_rate,
        beta_1=FLAGS.beta_1,
        lr_drops=drops,
        seed=FLAGS.seed,
        deterministic=FLAGS.deterministic,
        strategy=FLAGS.strategy,
        eval_split=FLAGS.eval_split,
        verbose=FLAGS.verbose,
        precision=FLAGS.precision,
        grad_accum_steps=FLAGS.grad_accum_steps,
        nonfinite_policy=FLAGS.nonfinite_policy,
        optimizer=FLAGS.optimizer,
        disc_optimizer=FLAGS.disc_optimizer,
        disc_momentum=FLAGS.disc_momentum,
        disc_weight_decay=FLAGS.disc_weight_decay,
        min_scale=FLAGS.min_scale,
        real_min_scale=FLAGS.real_min_scale,
        synthetic_jitter=FLAGS.synthetic_jitter,
        real_jitter=FLAGS.real_jitter,
        jit_compile=FLAGS.jit_compile,
        profile_steps=tuple(FLAGS.profile_steps) or None,
        restart=FLAGS.restart,
    )


# Errors that end a run with one line on stderr (besides ValueError and OSError).
RUN_ERRORS = (NonFiniteLossError, CheckpointSaveError)


def main(argv):
    del argv
    runtime.configure_threads(collectives=FLAGS.strategy == "mirrored")  # before any TF op
    results = train(run_config_from_flags())
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    run(main, "train.py", RUN_ERRORS)
