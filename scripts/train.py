"""Trains the multi-task adversarial network (paper Algorithm 1).

Every flag is generated from a field of ``RunConfig`` / ``TrainerConfig``
(``mtsyn_tf/trainer/config.py``, where each setting's default and help live);
``--helpfull`` lists them with their dotted field names.

Examples:
  # A named experiment (mtsyn_tf/configs/): the paper's Table 4 row 7 (3 tasks, DA at conv5)
  # with its recipe (AlexNet-BN, batch 28 per replica on 8 GPUs, 30 epochs, B/H: Adam 1e-3
  # β1 0.5, D: SGD 1e-3 momentum 0.9 weight decay 5e-4), your data and directory:
  python scripts/train.py --config=paper/multitask_da_conv5 \
      --synthetic_dir=workspace/data/synthetic/hypersim --places365_data_dir=~/tensorflow_datasets \
      --workdir=workspace/runs/paper_conv5

  # Its demo-scale twin on the embedded data (minutes on a CPU), DA moved to conv4:
  python scripts/train.py --config=demo/multitask_da_conv5 --set=trainer.da_tap=conv4

  # Without --config, the flags alone (their defaults are the fields'):
  python scripts/train.py --preset=small --synthetic_dir=workspace/data/synthetic/demo \
      --workdir=workspace/runs/small --batch_size=8 --epochs=4 --steps_per_epoch=25

Re-running the same command resumes from the last checkpoint in --workdir.
"""

from __future__ import annotations

import json

from absl import flags

from mtsyn_tf import runtime
from mtsyn_tf.cli import run
from mtsyn_tf.configs.flags import config_from_flags, define_flags
from mtsyn_tf.trainer.callbacks import NonFiniteLossError
from mtsyn_tf.trainer.checkpointing import CheckpointSaveError
from mtsyn_tf.trainer.loop import train

FLAGS = flags.FLAGS
define_flags(FLAGS)

# Errors that end a run with one line on stderr (besides ValueError and OSError).
RUN_ERRORS = (NonFiniteLossError, CheckpointSaveError)


def main(argv):
    del argv
    config = config_from_flags(FLAGS)
    runtime.configure_threads(collectives=config.strategy == "mirrored")  # before any TF op
    print(json.dumps(train(config), indent=2))


if __name__ == "__main__":
    run(main, "train.py", RUN_ERRORS)
