"""The main job in one command: render → real domain → train → evaluate → export → report.

  python scripts/demo.py --workspace=workspace

With the defaults this took 8 minutes from a fresh clone on 2 idle CPU cores (README: the
measured steps); the report lands in <workspace>/reports/demo/report.html. Re-running
reuses the rendered data and resumes or reuses the training run (``--retrain`` starts it
afresh).
"""

from __future__ import annotations

import json

from absl import flags, logging

from mtsyn_tf.cli import run
from mtsyn_tf.demo.run import DemoConfig, run_demo
from mtsyn_tf.io_utils import check_output_dir

_D = DemoConfig()
FLAGS = flags.FLAGS
flags.DEFINE_string("workspace", _D.workspace, "Workspace root (see WORKSPACE.md).")
flags.DEFINE_integer("num_scenes", _D.num_scenes, "Training scenes to render.")
flags.DEFINE_integer("num_test_scenes", _D.num_test_scenes, "Held-out scenes to render.")
flags.DEFINE_integer("spp", _D.spp, "Samples per pixel of the RGB renders.")
flags.DEFINE_integer("workers", _D.workers, "Render processes.")
flags.DEFINE_string("preset", _D.preset, "Model preset.")
flags.DEFINE_integer("batch_size", _D.batch_size, "Batch size per domain.")
flags.DEFINE_integer("epochs", _D.epochs, "Training epochs.")
flags.DEFINE_integer("steps_per_epoch", _D.steps_per_epoch, "Steps per epoch.")
flags.DEFINE_float("learning_rate", _D.learning_rate, "Base learning rate of all optimizers.")
flags.DEFINE_enum(
    "lr_schedule",
    _D.lr_schedule,
    ["step", "cosine"],
    "'step' (default): ×0.1 at 60 %/90 %; 'cosine': linear warmup, then cosine decay to 0.",
)
flags.DEFINE_float(
    "warmup_fraction", _D.warmup_fraction, "Warmup share of training (--lr_schedule=cosine)."
)
flags.DEFINE_integer("seed", _D.seed, "Seed of rendering, data order and training.")
flags.DEFINE_bool("retrain", False, "Delete an existing demo run and train from scratch.")


_POSITIVE = ("num_scenes", "spp", "workers", "batch_size", "epochs", "steps_per_epoch")


def _check_flags() -> None:
    """Every flag checked before the (long) render starts; nothing is created."""
    for name in _POSITIVE:
        if getattr(FLAGS, name) < 1:
            raise ValueError(f"--{name} must be >= 1. Received: --{name}={getattr(FLAGS, name)}")
    if FLAGS.num_test_scenes < 1:
        raise ValueError(
            "--num_test_scenes must be >= 1 (the demo evaluates on held-out scenes). "
            f"Received: --num_test_scenes={FLAGS.num_test_scenes}"
        )
    if FLAGS.seed < 0:
        raise ValueError(f"--seed must be >= 0. Received: --seed={FLAGS.seed}")
    if not FLAGS.learning_rate > 0:
        raise ValueError(
            f"--learning_rate must be > 0. Received: --learning_rate={FLAGS.learning_rate}"
        )
    if not 0 <= FLAGS.warmup_fraction < 1 or (
        FLAGS.lr_schedule == "step" and FLAGS.warmup_fraction
    ):
        raise ValueError(
            "--warmup_fraction must be in [0, 1), and 0 with --lr_schedule=step. Received: "
            f"--warmup_fraction={FLAGS.warmup_fraction}, --lr_schedule={FLAGS.lr_schedule}"
        )
    # Imported here: the renderer's spawned workers re-import this file, and the models
    # package imports TensorFlow (DrJit must never be loaded after it in one process).
    from mtsyn_tf.models.presets import preset_names

    if FLAGS.preset not in preset_names():
        raise ValueError(f"--preset must be one of {preset_names()}. Received: {FLAGS.preset!r}")
    check_output_dir(FLAGS.workspace, "--workspace")


def main(argv):
    del argv
    _check_flags()
    cfg = DemoConfig(
        workspace=FLAGS.workspace,
        num_scenes=FLAGS.num_scenes,
        num_test_scenes=FLAGS.num_test_scenes,
        spp=FLAGS.spp,
        workers=FLAGS.workers,
        preset=FLAGS.preset,
        batch_size=FLAGS.batch_size,
        epochs=FLAGS.epochs,
        steps_per_epoch=FLAGS.steps_per_epoch,
        learning_rate=FLAGS.learning_rate,
        lr_schedule=FLAGS.lr_schedule,
        warmup_fraction=FLAGS.warmup_fraction,
        seed=FLAGS.seed,
        retrain=FLAGS.retrain,
    )
    summary = run_demo(cfg)
    print(
        json.dumps(
            {k: summary[k] for k in ("comparison", "step_seconds", "total_seconds")}, indent=2
        )
    )
    print(f"\nReport: {summary['artifacts']['report']}/report.html")
    worse = [r["metric"] for r in summary["comparison"] if not r["better"]]
    if worse:
        logging.warning("The trained model is not better than the untrained one on: %s", worse)


if __name__ == "__main__":
    run(main, "demo.py")
