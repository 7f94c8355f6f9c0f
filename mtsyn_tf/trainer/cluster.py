"""A cluster of training processes: TF_CONFIG checks, the start-up rendezvous, peer errors.

One process per host (or per port on one host); each reads the cluster from
``TF_CONFIG`` (or ``--worker_hosts``/``--task_index``), checked before TF starts its
server. ``Cluster`` is what the run driver (``trainer/loop.py``) needs from it: the
``MultiWorkerMirroredStrategy``, whether this process is the chief, a check that every
worker holds the same value (the restored epoch), and the translation of a lost peer
into ``PeerUnavailableError``.

Failures are reported, not hung on: a peer that does not join within
``peer_timeout_s`` at start-up, a collective that takes longer than
``collective_timeout_s``, or a peer that dies mid-run (TF's collective health check
aborts the survivors' collectives) raise ``PeerUnavailableError`` naming the cluster.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import threading
import time

import tensorflow as tf

TASK_TYPES = ("chief", "worker")


class ClusterConfigError(ValueError):
    """TF_CONFIG / --worker_hosts / --task_index do not describe a usable cluster."""


class PeerUnavailableError(RuntimeError):
    """A peer worker could not be reached, or stopped answering, during training."""


# ---------------------------------------------------------------------- TF_CONFIG
def make_tf_config(worker_hosts, task_index: int) -> dict:
    """TF_CONFIG for ``worker_hosts`` ("host:port" list or comma-separated string)."""
    if isinstance(worker_hosts, str):
        worker_hosts = [h.strip() for h in worker_hosts.split(",") if h.strip()]
    config = {
        "cluster": {"worker": list(worker_hosts)},
        "task": {"type": "worker", "index": task_index},
    }
    return validate_tf_config(config, source="--worker_hosts/--task_index")


def parse_tf_config(text: str, source: str = "TF_CONFIG") -> dict:
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ClusterConfigError(
            f"{source} is not valid JSON ({err}). Expected e.g. "
            '{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
            f'"task": {{"type": "worker", "index": 0}}}}. Received: {text!r}'
        ) from None
    return validate_tf_config(config, source)


def _check_address(address, where: str) -> None:
    if not isinstance(address, str) or address.count(":") < 1:
        raise ClusterConfigError(f'{where}: expected "host:port". Received: {address!r}')
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterConfigError(
            f'{where}: expected "host:port" with a port in 1..65535. Received: {address!r}'
        )


def validate_tf_config(config, source: str = "TF_CONFIG") -> dict:
    """Checks the cluster/task structure; raises ``ClusterConfigError`` naming the problem."""
    if not isinstance(config, dict):
        raise ClusterConfigError(f"{source} must be a JSON object. Received: {config!r}")
    missing = [k for k in ("cluster", "task") if k not in config]
    if missing:
        raise ClusterConfigError(f"{source} has no {missing} entry. Received: {config!r}")
    cluster, task = config["cluster"], config["task"]
    if not isinstance(cluster, dict) or not cluster:
        raise ClusterConfigError(
            f'{source}["cluster"] must map task types to address lists. Received: {cluster!r}'
        )
    unknown = sorted(set(cluster) - set(TASK_TYPES))
    if unknown:
        raise ClusterConfigError(
            f"{source}: task types {unknown} are not supported (MultiWorkerMirroredStrategy "
            f"takes {TASK_TYPES}). Received: cluster={cluster!r}"
        )
    if len(cluster.get("chief", [])) > 1:
        raise ClusterConfigError(f"{source}: at most one chief. Received: {cluster['chief']!r}")
    seen = set()
    for kind, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            raise ClusterConfigError(
                f'{source}["cluster"]["{kind}"] must be a non-empty list of "host:port". '
                f"Received: {addresses!r}"
            )
        for i, address in enumerate(addresses):
            _check_address(address, f'{source}["cluster"]["{kind}"][{i}]')
            if address in seen:
                raise ClusterConfigError(f"{source}: address {address!r} is listed twice.")
            seen.add(address)
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ClusterConfigError(
            f'{source}["task"] must be {{"type": ..., "index": ...}}. Received: {task!r}'
        )
    if task["type"] not in cluster:
        raise ClusterConfigError(
            f"{source}: task type {task['type']!r} is not in the cluster {sorted(cluster)}."
        )
    index = task["index"]
    if (
        not isinstance(index, int)
        or isinstance(index, bool)
        or not 0 <= index < len(cluster[task["type"]])
    ):
        raise ClusterConfigError(
            f"{source}: task index must be an integer in [0, {len(cluster[task['type']])}) "
            f"for {len(cluster[task['type']])} {task['type']}(s). Received: index={index!r}"
        )
    return {"cluster": cluster, "task": {"type": task["type"], "index": index}}


def resolve_tf_config(worker_hosts=None, task_index=None, environ=None) -> dict | None:
    """Flags first, else ``$TF_CONFIG``; None when neither is set (one process)."""
    environ = os.environ if environ is None else environ
    if worker_hosts:
        if task_index is None:
            raise ClusterConfigError("--worker_hosts needs --task_index (this worker's position).")
        return make_tf_config(worker_hosts, task_index)
    if task_index is not None:
        raise ClusterConfigError("--task_index needs --worker_hosts.")
    text = environ.get("TF_CONFIG", "").strip()
    return parse_tf_config(text) if text else None


def is_chief(tf_config: dict | None) -> bool:
    """The chief is the "chief" task if there is one, else worker 0."""
    if tf_config is None:
        return True
    task = tf_config["task"]
    if "chief" in tf_config["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and task["index"] == 0


def _addresses(tf_config: dict) -> list[str]:
    return [a for kind in TASK_TYPES for a in tf_config["cluster"].get(kind, [])]


def _own_address(tf_config: dict) -> str:
    task = tf_config["task"]
    return tf_config["cluster"][task["type"]][task["index"]]


def rendezvous(tf_config: dict, timeout_s: float, poll_s: float = 0.2) -> None:
    """Returns once every worker of the cluster has reached this point, else raises.

    Each worker listens on its own port (before TF's server takes it) and keeps
    connecting to every peer; it leaves when it has reached every peer *and* every peer
    has reached it, so no worker closes its listener before the others have seen it.
    """
    own = _own_address(tf_config)
    peers = [a for a in _addresses(tf_config) if a != own]
    if not peers:
        return
    host, _, port = own.rpartition(":")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("", int(port)))
    except OSError as err:
        raise PeerUnavailableError(
            f"This worker cannot listen on {own} ({err}): is another process using the port?"
        ) from None
    listener.listen(len(peers) + 4)
    listener.settimeout(poll_s)
    seen_by = set()  # peers that connected to us
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2.0)
                try:
                    seen_by.add(conn.recv(256).decode(errors="replace"))
                except OSError:
                    pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    reached = set()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for peer in peers:
                if peer in reached:
                    continue
                peer_host, _, peer_port = peer.rpartition(":")
                try:
                    with socket.create_connection((peer_host, int(peer_port)), timeout=1.0) as c:
                        c.sendall(own.encode())
                    reached.add(peer)
                except OSError:
                    pass
            if len(reached) == len(peers) and set(peers) <= seen_by:
                return
            time.sleep(poll_s)
        missing = sorted((set(peers) - reached) | (set(peers) - seen_by))
        raise PeerUnavailableError(
            f"Worker(s) {missing} did not answer within {timeout_s:.0f} s (this worker: "
            f"{own}). Start every worker of {_addresses(tf_config)} with the same command, "
            "check the addresses and the firewall, or raise --peer_timeout_s."
        )
    finally:
        stop.set()
        thread.join()
        listener.close()


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process's place in a multi-worker run (``tf_config`` from ``resolve_tf_config``)."""

    tf_config: dict
    peer_timeout_s: float = 120.0
    collective_timeout_s: float | None = 600.0

    @property
    def is_chief(self) -> bool:
        return is_chief(self.tf_config)

    @property
    def task_index(self) -> int:
        return self.tf_config["task"]["index"]

    def make_strategy(self) -> tf.distribute.Strategy:
        """``MultiWorkerMirroredStrategy`` over the cluster, after every worker has joined.

        Workers first meet in ``rendezvous`` (at most ``peer_timeout_s``, then
        ``PeerUnavailableError`` naming the missing workers). ``collective_timeout_s``
        bounds every later all-reduce (it must exceed the slowest step).
        """
        os.environ["TF_CONFIG"] = json.dumps(self.tf_config)
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.AUTO,
            timeout_seconds=self.collective_timeout_s,
        )
        # MWMS's constructor blocks, holding the GIL, until every worker has registered with
        # TF's coordination service, with no timeout that works in TF 2.21 (measured). A
        # plain TCP rendezvous first turns a missing peer into a clear, timely error.
        rendezvous(self.tf_config, self.peer_timeout_s)
        try:
            return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        except (RuntimeError, tf.errors.OpError) as err:
            raise PeerUnavailableError(
                f"MultiWorkerMirroredStrategy could not start on {_addresses(self.tf_config)} "
                f"(this worker: {_own_address(self.tf_config)}; {type(err).__name__}: "
                f"{str(err).strip().splitlines()[0][:200]}). Restart every worker."
            ) from err

    def lost_peer_error(self, err: Exception, checkpoint_dir: str) -> PeerUnavailableError:
        """What to raise when a collective failed with one of ``PEER_ERRORS``."""
        first_line = _cause(getattr(err, "message", None) or str(err))
        return PeerUnavailableError(
            f"Lost contact with the other workers of {_addresses(self.tf_config)} (this "
            f"worker: {_own_address(self.tf_config)}): {type(err).__name__}: "
            f"{first_line[:300]}. A worker probably died. Restart every worker with the same "
            f"command to resume from the last checkpoint in {checkpoint_dir}."
        )


# A collective that lost a peer ends with one of these (TF 2.21: which one depends on
# whether the health check, the timeout or the broken channel notices first).
PEER_ERRORS = (
    tf.errors.UnavailableError,
    tf.errors.DeadlineExceededError,
    tf.errors.CancelledError,
    tf.errors.AbortedError,
)


def agree_across_replicas(strategy: tf.distribute.Strategy, value: int, what: str) -> None:
    """Every replica (every worker) must hold the same ``value``, e.g. the restored epoch."""
    if strategy.num_replicas_in_sync == 1:
        return
    x = tf.constant(float(value))
    moments = strategy.run(lambda: tf.stack([x, x * x]))
    mean = strategy.reduce(tf.distribute.ReduceOp.MEAN, moments, axis=None).numpy()
    if mean[1] - mean[0] ** 2 > 1e-6:
        raise ValueError(
            f"Workers disagree on {what} (this worker: {value}, mean over workers: "
            f"{mean[0]:.3f}). Every worker must see the chief's --workdir (shared filesystem)."
        )


def _cause(message: str) -> str:
    """The informative line of a TF runtime error (not "Graph execution error:")."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    for line in lines:
        if not line.startswith(("Graph execution error", "Detected at node", "File ", "[[", "in ")):
            return line
    return lines[0] if lines else ""
