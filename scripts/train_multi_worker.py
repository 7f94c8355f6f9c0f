"""Trains on several machines (or processes) with MultiWorkerMirroredStrategy.

One process per host; every process gets the same command except --task_index (or its
own TF_CONFIG), and the same --workdir on a shared filesystem. --batch_size is per
worker (per replica), so the global batch is batch_size × workers × grad_accum_steps.
The run flags are scripts/train.py's (generated from RunConfig's fields, --config and
--set included; --strategy and --jit_compile do not apply).

Examples:
  # Two workers on one machine (loopback ports):
  python scripts/train_multi_worker.py --worker_hosts=localhost:12345,localhost:12346 \
      --task_index=0 --preset=small --workdir=/shared/runs/mw ... &
  python scripts/train_multi_worker.py --worker_hosts=localhost:12345,localhost:12346 \
      --task_index=1 --preset=small --workdir=/shared/runs/mw ...

  # Or with TF_CONFIG (what Kubernetes operators set):
  TF_CONFIG='{"cluster": {"worker": ["w0:2222", "w1:2222"]}, "task": {"type": "worker", "index": 0}}' \
      python scripts/train_multi_worker.py --config=paper/full_model --workdir=/shared/runs/mw ...

Without --worker_hosts and TF_CONFIG it trains in this process alone with the same loop
(a one-process reference for the same global batch). Re-running resumes.
"""

from __future__ import annotations

import json

from absl import flags

from mtsyn_tf.cli import run
from mtsyn_tf.configs.flags import config_from_flags, define_flags
from mtsyn_tf.trainer.callbacks import NonFiniteLossError
from mtsyn_tf.trainer.checkpointing import CheckpointSaveError
from mtsyn_tf.trainer.multi_worker import (
    ClusterConfigError,
    PeerUnavailableError,
    resolve_tf_config,
    train_multi_worker,
)

FLAGS = flags.FLAGS
define_flags(FLAGS)
flags.DEFINE_list(
    "worker_hosts", [], "host:port of every worker, in task order (else $TF_CONFIG is used)."
)
flags.DEFINE_integer("task_index", None, "This worker's position in --worker_hosts.")
flags.DEFINE_float(
    "peer_timeout_s", 120.0, "Give up if a peer is not reachable this long after start-up."
)
flags.DEFINE_float(
    "collective_timeout_s",
    600.0,
    "Give up if one collective (all-reduce) waits this long: a peer died or hangs. "
    "Must exceed the slowest step.",
)


def main(argv):
    del argv
    tf_config = resolve_tf_config(FLAGS.worker_hosts, FLAGS.task_index)
    results = train_multi_worker(
        config_from_flags(FLAGS),
        tf_config,
        peer_timeout_s=FLAGS.peer_timeout_s,
        collective_timeout_s=FLAGS.collective_timeout_s,
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    run(
        main,
        "train_multi_worker.py",
        (ClusterConfigError, PeerUnavailableError, NonFiniteLossError, CheckpointSaveError),
    )
