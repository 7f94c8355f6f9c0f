"""Diagnostics of a model on a researcher's own data.

--what=gradient_balance: per-task gradient norms on the shared base B (‖∇_B λ_t·L_t‖ and
‖∇_B L_t‖) on one training batch, and the largest/smallest ratio over the tasks. The
paper's λ are meant to "scale their gradients to have similar magnitude"; README "Loss
scales" explains the numbers.

Examples:
  # At initialisation, the paper's AlexNet, on rendered data:
  python scripts/diagnose.py --what=gradient_balance --preset=paper_alexnet \
      --synthetic_dir=workspace/data/synthetic/demo --batch_size=4

  # A trained run (its preset and loss settings are read from <workdir>/config.json):
  python scripts/diagnose.py --what=gradient_balance --checkpoint=workspace/runs/demo \
      --synthetic_dir=workspace/data/synthetic/demo
"""

from __future__ import annotations

import json

from absl import app, flags

from mtsyn_tf.cli import one_line_errors
from mtsyn_tf.losses.contour import NORMALIZATIONS
from mtsyn_tf.models.presets import preset_names
from mtsyn_tf.trainer.config import DEFAULT_LOSS_WEIGHTS, DISC_FEATURES

FLAGS = flags.FLAGS
flags.DEFINE_enum("what", "gradient_balance", ["gradient_balance"], "Which diagnostic to run.")
flags.DEFINE_enum("preset", "paper_alexnet", preset_names(), "Model preset (without --checkpoint).")
flags.DEFINE_string("synthetic_dir", None, "Directory of synthetic TFRecord shards.")
flags.DEFINE_string("split", "train", "Split of --synthetic_dir to draw the batch from.")
flags.DEFINE_string(
    "checkpoint", None, "Training workdir or checkpoint prefix (default: a fresh initialisation)."
)
flags.DEFINE_integer("batch_size", 8, "Images in the measured batch.")
flags.DEFINE_integer("seed", 0, "Seed of initialisation, batch choice and augmentation.")
flags.DEFINE_integer(
    "min_edge_pixels", 350, "Edge-poor images are resampled, as in training (0: keep all)."
)
flags.DEFINE_float("w_contour", DEFAULT_LOSS_WEIGHTS["contour"], "λe (without --checkpoint).")
flags.DEFINE_float("w_depth", DEFAULT_LOSS_WEIGHTS["depth"], "λd (without --checkpoint).")
flags.DEFINE_float("w_normals", DEFAULT_LOSS_WEIGHTS["normals"], "λs (without --checkpoint).")
flags.DEFINE_float(
    "w_adversarial", DEFAULT_LOSS_WEIGHTS["adversarial"], "λ of the adversarial term."
)
flags.DEFINE_enum(
    "contour_normalization", "edges", NORMALIZATIONS, "Contour loss scale (without --checkpoint)."
)
flags.DEFINE_enum(
    "disc_features", "pre_activation", DISC_FEATURES, "D's input (without --checkpoint)."
)
flags.DEFINE_bool("json", False, "Print the report as JSON instead of a table.")


def main(argv):
    del argv
    from mtsyn_tf.trainer import gradient_balance
    from mtsyn_tf.trainer.config import TrainerConfig

    if not FLAGS.synthetic_dir:
        raise ValueError("--synthetic_dir is required. Received: --synthetic_dir=None")
    if FLAGS.batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1. Received: --batch_size={FLAGS.batch_size}")
    config = TrainerConfig(
        loss_weights={
            "contour": FLAGS.w_contour,
            "depth": FLAGS.w_depth,
            "normals": FLAGS.w_normals,
            "adversarial": FLAGS.w_adversarial,
        },
        contour_normalization=FLAGS.contour_normalization,
        disc_features=FLAGS.disc_features,
        min_edge_pixels=FLAGS.min_edge_pixels,
        seed=FLAGS.seed,
    )
    report, info = gradient_balance.measure(
        FLAGS.synthetic_dir,
        preset=FLAGS.preset,
        config=config,
        checkpoint=FLAGS.checkpoint,
        batch_size=FLAGS.batch_size,
        split=FLAGS.split,
        seed=FLAGS.seed,
    )
    if FLAGS.json:
        print(json.dumps({**report, **info}, indent=2))
        return
    print(
        f"gradient balance on B: preset {info['preset']}, {info['source']}, batch "
        f"{info['batch_size']} of {FLAGS.synthetic_dir} ({FLAGS.split})"
    )
    print(gradient_balance.format_report(report))


if __name__ == "__main__":
    app.run(one_line_errors(main, "diagnose.py"))
