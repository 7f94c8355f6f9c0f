"""Trains the multi-task adversarial network (paper Algorithm 1).

Examples:
  # The paper's recipe (AlexNet-BN, batch 28 per replica, 30 epochs, Adam 1e-3 β1 0.5):
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
import sys

from absl import app, flags, logging

from mtsyn_tf import runtime
from mtsyn_tf.models.presets import DA_TAPS, TASKS, preset_names
from mtsyn_tf.trainer.config import DEFAULT_LOSS_WEIGHTS, TrainerConfig
from mtsyn_tf.trainer.loop import OPTIMIZERS, STRATEGIES, RunConfig, train
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
flags.DEFINE_integer(
    "batch_size", 28, "Per-replica batch size for each domain (reference: 28 × 8 GPUs)."
)
flags.DEFINE_integer("epochs", 30, "Epochs (checkpoints and resume points are at epoch ends).")
flags.DEFINE_integer("steps_per_epoch", 1000, "Training steps per epoch.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate (both optimizers).")
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
flags.DEFINE_integer("pool_size", 128, "D's history pool of synthetic features (0 disables).")
flags.DEFINE_float("pool_swap_prob", 0.5, "History pool swap probability.")
flags.DEFINE_bool("grayscale", True, "Paper input: one random RGB channel repeated 3 times.")
flags.DEFINE_integer(
    "min_edge_pixels", 350, "Skip the edge loss on images with fewer contour pixels."
)
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
flags.DEFINE_enum("optimizer", "adam", OPTIMIZERS, "Both optimizers (sgd: for comparisons).")
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
        jit_compile=FLAGS.jit_compile,
        profile_steps=tuple(FLAGS.profile_steps) or None,
    )


def main(argv):
    del argv
    runtime.configure_threads(collectives=FLAGS.strategy == "mirrored")  # before any TF op
    from mtsyn_tf.trainer.callbacks import NonFiniteLossError
    from mtsyn_tf.trainer.checkpointing import CheckpointSaveError

    try:
        results = train(run_config_from_flags())
    except (ValueError, NonFiniteLossError, CheckpointSaveError) as err:
        logging.error("%s", err)
        sys.exit(f"train.py: {err}")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    app.run(main)
