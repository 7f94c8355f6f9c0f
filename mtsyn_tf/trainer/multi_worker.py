"""Multi-worker training: ``MultiWorkerMirroredStrategy`` with a custom training loop.

Keras 3's ``fit`` does not work under ``MultiWorkerMirroredStrategy`` (TF 2.21), so this
module runs the trainer's own ``train_step`` with ``strategy.run`` inside a
``tf.function``. One process per host (or per port on one host); each reads the cluster
from ``TF_CONFIG`` (or ``--worker_hosts``/``--task_index``), checked before TF starts
its server. Worker 0 is the chief: it alone writes ``history.csv``, TensorBoard scalars,
``config.json`` and the final base SavedModel; every worker writes checkpoints (saving is
a collective operation), the others into a temporary directory that is then deleted (the
pattern of the TF multi-worker guide). On resume every worker restores from the chief's
``<workdir>/checkpoints``, so the workdir must be on a filesystem all workers see; the
workers check that they restored the same epoch.

Data: every worker builds the same deterministic global-batch stream and keeps its own
rows (replica r gets rows [r·b, (r+1)·b) of the global batch), so a run on N workers
sees exactly the batches of a one-process run with the same global batch, and resume is
exact. The price is that each worker decodes the global batch; the input pipeline must
therefore outpace training by more than N× (``benchmarks/train_step.py`` reports the
ratio).

Failures are reported, not hung on: a peer that does not join within
``peer_timeout_s`` at start-up, a collective that takes longer than
``collective_timeout_s``, or a peer that dies mid-run (TF's collective health check
aborts the survivors' collectives) raise ``PeerUnavailableError`` naming the cluster.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from mtsyn_tf.data import pipeline
from mtsyn_tf.trainer import callbacks as cbs
from mtsyn_tf.trainer import precision as mp
from mtsyn_tf.trainer import profiling
from mtsyn_tf.trainer.checkpointing import RunCheckpointer
from mtsyn_tf.trainer.loop import (
    RunConfig,
    _check_run_inputs,
    _record_run,
    build_trainer,
    export_base,
    pipeline_options,
)

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


def make_strategy(
    tf_config: dict | None,
    peer_timeout_s: float = 120.0,
    collective_timeout_s: float | None = None,
):
    """``MultiWorkerMirroredStrategy`` for a cluster (TF_CONFIG exported), else TF's default.

    Workers first meet in ``rendezvous`` (at most ``peer_timeout_s``, then
    ``PeerUnavailableError`` naming the missing workers). ``collective_timeout_s`` bounds
    every later all-reduce (it must exceed the slowest step).
    """
    if tf_config is None:
        return tf.distribute.get_strategy()
    os.environ["TF_CONFIG"] = json.dumps(tf_config)
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.AUTO,
        timeout_seconds=collective_timeout_s,
    )
    # MWMS's constructor blocks, holding the GIL, until every worker has registered with
    # TF's coordination service, with no timeout that works in TF 2.21 (measured). A
    # plain TCP rendezvous first turns a missing peer into a clear, timely error.
    rendezvous(tf_config, peer_timeout_s)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except (RuntimeError, tf.errors.OpError) as err:
        raise PeerUnavailableError(
            f"MultiWorkerMirroredStrategy could not start on {_addresses(tf_config)} (this "
            f"worker: {_own_address(tf_config)}; {type(err).__name__}: "
            f"{str(err).strip().splitlines()[0][:200]}). Restart every worker."
        ) from err


# ---------------------------------------------------------------------- data
def distributed_training_dataset(strategy, cfg: RunConfig, image_size: int, skip_steps: int):
    """Per-replica batches whose union over replicas is the one-process global batch."""
    replicas = strategy.num_replicas_in_sync
    per_replica = cfg.batch_size * cfg.grad_accum_steps

    def dataset_fn(context: tf.distribute.InputContext):
        ds = pipeline.make_training_dataset(
            cfg.synthetic_dir,
            cfg.real_source,
            batch_size=per_replica * replicas,
            image_size=image_size,
            grayscale=False,  # the trainer converts in-step
            seed=cfg.seed,
            deterministic=cfg.deterministic,
            places365_data_dir=cfg.places365_data_dir,
            **pipeline_options(cfg),
        ).skip(skip_steps)
        local = replicas // context.num_input_pipelines
        start = context.input_pipeline_id * local * per_replica
        rows = slice(start, start + local * per_replica)
        ds = ds.map(lambda b: tf.nest.map_structure(lambda t: t[rows], b))
        if local > 1:  # one element per local replica, in replica order
            ds = ds.unbatch().batch(per_replica, drop_remainder=True)
        return ds.prefetch(tf.data.AUTOTUNE)

    return strategy.distribute_datasets_from_function(dataset_fn)


# ---------------------------------------------------------------------- the loop
def make_distributed_step(strategy, trainer):
    """``tf.function`` running one ``train_step`` on every replica; returns global means."""

    @tf.function
    def step(iterator):
        per_replica = strategy.run(trainer.train_step, args=(next(iterator),))
        return {
            k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
            for k, v in per_replica.items()
        }

    return step


def _agree_across_workers(strategy, value: int, what: str) -> None:
    """All workers must hold the same ``value`` (e.g. the restored epoch)."""
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


class _History:
    """history.csv rows (chief only), the same columns as Keras' CSVLogger."""

    def __init__(self, path: str, enabled: bool):
        self.path, self.enabled = path, enabled

    def append(self, epoch: int, logs: dict) -> None:
        if not self.enabled:
            return
        new = not os.path.exists(self.path)
        with open(self.path, "a", newline="") as f:
            writer = csv.writer(f)
            keys = sorted(logs)
            if new:
                writer.writerow(["epoch", *keys])
            writer.writerow([epoch, *[logs[k] for k in keys]])
            f.flush()
            os.fsync(f.fileno())


def train_multi_worker(
    cfg: RunConfig,
    tf_config: dict | None,
    peer_timeout_s: float = 120.0,
    collective_timeout_s: float | None = 600.0,
) -> dict:
    """Runs (or resumes) ``cfg`` on the cluster ``tf_config`` (None: this process alone).

    Returns {"train_seconds", "epochs", "steps", "initial_epoch", "steps_run",
    "final_logs", "is_chief"} and, on the chief, "base_saved_model". Raises
    ``PeerUnavailableError`` when a peer cannot be reached or dies; re-running the same
    command on every worker resumes.
    """
    preset = _check_run_inputs(cfg)
    if cfg.jit_compile and tf_config is not None:
        raise ValueError("jit_compile does not work with MultiWorkerMirroredStrategy (TF 2.21).")
    chief = is_chief(tf_config)
    if cfg.deterministic:
        keras.utils.set_random_seed(cfg.seed)
        tf.config.experimental.enable_op_determinism()
    strategy = make_strategy(tf_config, peer_timeout_s, collective_timeout_s)
    try:
        with mp.use_policy(mp.resolve_policy(cfg.precision)):
            return _run(cfg, preset, strategy, tf_config, chief)
    except (
        tf.errors.UnavailableError,
        tf.errors.DeadlineExceededError,
        tf.errors.CancelledError,
        tf.errors.AbortedError,
    ) as err:
        if tf_config is None:
            raise
        first_line = _cause(getattr(err, "message", None) or str(err))
        raise PeerUnavailableError(
            f"Lost contact with the other workers of {_addresses(tf_config)} (this worker: "
            f"{_own_address(tf_config)}): {type(err).__name__}: {first_line[:300]}. A worker "
            f"probably died. Restart every worker with the same command to resume from the "
            f"last checkpoint in {os.path.join(cfg.workdir, 'checkpoints')}."
        ) from err


def _run(cfg, preset, strategy, tf_config, chief) -> dict:
    os.makedirs(cfg.workdir, exist_ok=True)
    total_steps = cfg.epochs * cfg.steps_per_epoch
    trainer = build_trainer(cfg, preset, strategy, total_steps)
    chief_dir = os.path.join(cfg.workdir, "checkpoints")
    restorer = RunCheckpointer(trainer, chief_dir)
    initial_epoch = restorer.restore_latest() if RunCheckpointer.has_checkpoint(chief_dir) else 0
    _agree_across_workers(strategy, initial_epoch, "the epoch to resume from")
    if chief:
        saver, scratch = restorer, None
        cbs.truncate_history(os.path.join(cfg.workdir, "history.csv"), initial_epoch)
        _record_run(cfg, preset, strategy)
    else:
        scratch = tempfile.mkdtemp(prefix=f"mtsyn_worker{tf_config['task']['index']}_")
        saver = RunCheckpointer(trainer, scratch, max_to_keep=1)

    dataset = distributed_training_dataset(
        strategy, cfg, preset["image_size"], initial_epoch * cfg.steps_per_epoch
    )
    iterator = iter(dataset)
    step_fn = make_distributed_step(strategy, trainer)
    history = _History(os.path.join(cfg.workdir, "history.csv"), chief)
    writer = (
        tf.summary.create_file_writer(os.path.join(cfg.workdir, "tensorboard", "train"))
        if chief
        else None
    )
    profile_steps = profiling.parse_profile_steps(cfg.profile_steps)
    profiler = (
        profiling.StepProfiler(os.path.join(cfg.workdir, "profile"), profile_steps)
        if profile_steps and chief
        else None
    )
    start, logs, steps_run = time.time(), {}, 0
    try:
        for epoch in range(initial_epoch, cfg.epochs):
            trainer.reset_metrics()
            for batch in range(cfg.steps_per_epoch):
                global_step = epoch * cfg.steps_per_epoch + batch + 1
                if profiler:
                    profiler.before_step(global_step)
                logs = {k: float(v) for k, v in step_fn(iterator).items()}
                steps_run += 1
                if profiler:
                    profiler.after_step(global_step)
                if cfg.nonfinite_policy == "stop":
                    _raise_if_non_finite(logs, global_step, epoch)
            history.append(epoch, logs)
            if writer is not None:
                with writer.as_default(step=epoch + 1):
                    for k, v in logs.items():
                        tf.summary.scalar(k, v)
                writer.flush()
            saver.save(epoch + 1)
            if logs.get("skipped_steps"):
                logging.warning(
                    "Epoch %d: %d non-finite stage updates were skipped (rolled back).",
                    epoch + 1,
                    int(round(logs["skipped_steps"])),
                )
            if cfg.verbose:
                logging.info("epoch %d/%d %s", epoch + 1, cfg.epochs, json.dumps(logs))
    finally:
        if profiler:
            profiler.finish()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    results = {
        "train_seconds": time.time() - start,
        "epochs": cfg.epochs,
        "steps": total_steps,
        # What this process did: a resumed run starts at the checkpoint's epoch.
        "initial_epoch": initial_epoch,
        "steps_run": steps_run,
        "final_logs": logs,
        "is_chief": chief,
        # Workers must agree bit for bit after an all-reduced update; compare this.
        "weights_sha256": weights_digest(trainer.model.weights + trainer.discriminator.weights),
    }
    if chief:
        results["base_saved_model"] = export_base(
            trainer.model, os.path.join(cfg.workdir, "saved_model_base")
        )
    return results


def _cause(message: str) -> str:
    """The informative line of a TF runtime error (not "Graph execution error:")."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    for line in lines:
        if not line.startswith(("Graph execution error", "Detected at node", "File ", "[[", "in ")):
            return line
    return lines[0] if lines else ""


def weights_digest(variables) -> str:
    """sha256 of the variables' float32 bytes, in order."""
    digest = hashlib.sha256()
    for v in variables:
        digest.update(np.ascontiguousarray(v.numpy()).tobytes())
    return digest.hexdigest()


def _raise_if_non_finite(logs: dict, step: int, epoch: int) -> None:
    for name, value in logs.items():
        if name.startswith("loss") and not np.isfinite(value):
            raise cbs.NonFiniteLossError(
                f"Non-finite {name}={value} at step {step} (epoch {epoch + 1}). Training "
                "stopped; the last checkpoint on disk is intact. Lower the learning rate, "
                "check the data, or use --nonfinite_policy=skip."
            )
