"""Diagnostics of a model on a researcher's own data.

--what=gradient_balance: per-task gradient norms on the shared base B (‖∇_B λ_t·L_t‖ and
‖∇_B L_t‖) on one training batch, and the largest/smallest ratio over the tasks. The
paper's λ are meant to "scale their gradients to have similar magnitude"; README "Loss
scales" explains the numbers.

The model and loss flags are scripts/train.py's (generated from RunConfig's fields, with
--config=NAME and --set=FIELD=VALUE); with --checkpoint, the run's own preset and loss
settings (its config.json) are used instead.

Examples:
  # At initialisation, the paper's AlexNet, on rendered data:
  python scripts/diagnose.py --what=gradient_balance --preset=paper_alexnet \
      --synthetic_dir=workspace/data/synthetic/demo --batch_size=4

  # A named experiment's model and loss weights:
  python scripts/diagnose.py --config=demo/depth --synthetic_dir=workspace/data/synthetic/demo

  # A trained run (its preset and loss settings are read from <workdir>/config.json):
  python scripts/diagnose.py --what=gradient_balance --checkpoint=workspace/runs/demo \
      --synthetic_dir=workspace/data/synthetic/demo
"""

from __future__ import annotations

import json

from absl import app, flags

from mtsyn_tf.cli import one_line_errors
from mtsyn_tf.configs.flags import config_from_flags, define_flags

# The run settings a gradient measurement depends on: model, batch, seed, losses.
MEASURED_SETTINGS = (
    "preset",
    "synthetic_dir",
    "batch_size",
    "seed",
    "trainer.min_edge_pixels",
    "trainer.loss_weights.contour",
    "trainer.loss_weights.depth",
    "trainer.loss_weights.normals",
    "trainer.loss_weights.adversarial",
    "trainer.contour_normalization",
    "trainer.disc_features",
)

FLAGS = flags.FLAGS
define_flags(
    FLAGS,
    include=MEASURED_SETTINGS,
    defaults={"batch_size": 8, "synthetic_dir": None},
)
flags.DEFINE_enum("what", "gradient_balance", ["gradient_balance"], "Which diagnostic to run.")
flags.DEFINE_string("split", "train", "Split of --synthetic_dir to draw the batch from.")
flags.DEFINE_string(
    "checkpoint", None, "Training workdir or checkpoint prefix (default: a fresh initialisation)."
)
flags.DEFINE_bool("json", False, "Print the report as JSON instead of a table.")


def main(argv):
    del argv
    from mtsyn_tf.trainer import gradient_balance

    run_config = config_from_flags(FLAGS)
    if not run_config.synthetic_dir:
        raise ValueError(
            f"--synthetic_dir is required. Received: --synthetic_dir={run_config.synthetic_dir}"
        )
    if run_config.batch_size < 1:
        raise ValueError(
            f"--batch_size must be >= 1. Received: --batch_size={run_config.batch_size}"
        )
    report, info = gradient_balance.measure(
        run_config.synthetic_dir,
        preset=run_config.preset,
        config=run_config.trainer,
        checkpoint=FLAGS.checkpoint,
        batch_size=run_config.batch_size,
        split=FLAGS.split,
        seed=run_config.seed,
    )
    if FLAGS.json:
        print(json.dumps({**report, **info}, indent=2))
        return
    print(
        f"gradient balance on B: preset {info['preset']}, {info['source']}, batch "
        f"{info['batch_size']} of {run_config.synthetic_dir} ({FLAGS.split})"
    )
    print(gradient_balance.format_report(report))


if __name__ == "__main__":
    app.run(one_line_errors(main, "diagnose.py"))
