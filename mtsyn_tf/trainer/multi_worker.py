"""Multi-worker training: the run driver (``trainer/loop.py``) as one worker of a cluster.

One process per host (or per port on one host), each with the same command except its
task index, and the same ``--workdir`` on a filesystem all workers see. Worker 0 (or the
"chief" task) is the chief: it alone writes ``history.csv``, TensorBoard scalars,
``config.json`` and the final base SavedModel; every worker writes checkpoints (saving is
a collective operation), the others into a temporary directory that is then deleted. On
resume every worker restores from the chief's ``<workdir>/checkpoints`` and they check
that they restored the same epoch. The loop, the callbacks and the data split are the
one-host run's (``trainer/epoch_loop.py``); the cluster configuration, rendezvous and
peer errors are ``trainer/cluster.py``'s.
"""

from __future__ import annotations

from mtsyn_tf.trainer import loop
from mtsyn_tf.trainer.cluster import (  # noqa: F401  (re-exported for scripts/train_multi_worker.py)
    Cluster,
    ClusterConfigError,
    PeerUnavailableError,
    is_chief,
    make_tf_config,
    parse_tf_config,
    resolve_tf_config,
)
from mtsyn_tf.trainer.config import RunConfig


def train_multi_worker(
    cfg: RunConfig,
    tf_config: dict | None,
    peer_timeout_s: float = 120.0,
    collective_timeout_s: float | None = 600.0,
) -> dict:
    """Runs (or resumes) ``cfg`` on the cluster ``tf_config`` (None: this process alone).

    Returns ``loop.train``'s results ("is_chief", "final_logs", "weights_sha256", …).
    Raises ``PeerUnavailableError`` when a peer cannot be reached or dies; re-running the
    same command on every worker resumes.
    """
    cluster = (
        None
        if tf_config is None
        else Cluster(
            tf_config, peer_timeout_s=peer_timeout_s, collective_timeout_s=collective_timeout_s
        )
    )
    return loop.train(cfg, cluster=cluster)
