"""The run driver: one training run on one device, several GPUs or several hosts.

``train(RunConfig(...))`` is what ``scripts/train.py`` and the demo call;
``multi_worker.train_multi_worker`` calls it with a ``cluster``. It checks every input
before the first step (``run_checks``), resumes from ``<workdir>/checkpoints`` when
present, and trains through the one epoch loop of ``epoch_loop`` with one callback list
(history, TensorBoard, checkpoints, the non-finite guard, profiler, image summaries).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import keras
import tensorflow as tf
from absl import logging

from mtsyn_tf import runtime
from mtsyn_tf.data import pipeline, shards
from mtsyn_tf.models import get_preset
from mtsyn_tf.trainer import callbacks as cbs
from mtsyn_tf.trainer import precision as mp
from mtsyn_tf.trainer import profiling
from mtsyn_tf.trainer.build import build_trainer
from mtsyn_tf.trainer.checkpointing import RunCheckpointer
from mtsyn_tf.trainer.cluster import PEER_ERRORS, Cluster, agree_across_replicas
from mtsyn_tf.trainer.config import (  # noqa: F401  (re-exported: older imports)
    DISC_OPTIMIZERS,
    OPTIMIZERS,
    STRATEGIES,
    RunConfig,
    TrainerConfig,
)
from mtsyn_tf.trainer.epoch_loop import (
    EpochTensorBoard,
    StepCounter,
    distribute_global_batches,
    run_epochs,
    weights_digest,
)
from mtsyn_tf.trainer.run_checks import check_run_inputs, name_corrupt_shard
from mtsyn_tf.trainer.run_record import (
    delete_run,
    record_run,
    remove_partial_run,
    write_json_atomic,
)


def make_strategy(name: str) -> tf.distribute.Strategy:
    """``auto``: MirroredStrategy on several GPUs, else TF's default strategy (one device).

    ``mirrored``: MirroredStrategy over every GPU, or every logical CPU without GPUs.

    ``auto`` prefers the default strategy over ``OneDeviceStrategy`` on one device because
    the input pipeline is re-distributed under ``OneDeviceStrategy``, and we measured
    that (under Keras ``fit``, TF 2.21) to reorder some augmentation seeds from run to run,
    which breaks exact resume; the default strategy keeps the pipeline bit-reproducible.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}. Received: strategy={name!r}")
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        # Every GPU, else every logical CPU (one unless split, as tests/trainer does).
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    return tf.distribute.get_strategy()


def pipeline_options(cfg: RunConfig) -> dict:
    """The augmentation and resampling arguments of ``pipeline.make_training_dataset``."""
    return {
        "min_scale": cfg.min_scale,
        "real_min_scale": cfg.real_min_scale,
        "synthetic_jitter": cfg.synthetic_jitter,
        "real_jitter": cfg.real_jitter,
        "min_edge_pixels": cfg.trainer.min_edge_pixels,
        "cache_mb": cfg.data_cache_mb,
    }


def train(cfg: RunConfig, extra_callbacks=(), cluster: Cluster | None = None) -> dict:
    """Runs (or resumes) training; returns final held-out metrics and artifact paths.

    One driver for every strategy: validate → seed → strategy → build → restore → record
    → data → the epoch loop (``epoch_loop.run_epochs``) → evaluate → export. ``cluster``
    (``trainer/cluster.py``) makes this process one worker of a
    ``MultiWorkerMirroredStrategy`` run; without it ``cfg.strategy`` picks the one-host
    strategy (one device, or MirroredStrategy over this host's GPUs).

    ``extra_callbacks`` are appended after the run's own (checkpoints come first, so a
    callback that stops training at an epoch end still leaves that epoch's checkpoint).
    The Keras dtype policy of ``cfg.precision`` holds inside the call and is restored after.
    Returns {"train_seconds", "epochs", "steps", "initial_epoch", "steps_run",
    "final_logs", "is_chief", "weights_sha256"}, "eval" when held-out data was evaluated,
    and on the chief "base_saved_model".
    """
    preset = check_run_inputs(cfg)
    if cfg.jit_compile and cluster is not None:
        raise ValueError(
            "jit_compile (XLA) does not work with MultiWorkerMirroredStrategy in TF 2.21. "
            "Received: jit_compile=True with a cluster"
        )
    chief = cluster is None or cluster.is_chief
    if cfg.restart and chief:  # before the rendezvous: no worker restores it meanwhile
        delete_run(cfg.workdir)
    before = sorted(os.listdir(cfg.workdir)) if os.path.isdir(cfg.workdir) else None
    try:
        try:
            with mp.use_policy(mp.resolve_policy(cfg.precision)):
                return _train(cfg, preset, extra_callbacks, cluster)
        except tf.errors.DataLossError as err:  # a corrupt record while training/evaluating
            name_corrupt_shard(cfg, err)
        except PEER_ERRORS as err:
            if cluster is None:
                raise
            raise cluster.lost_peer_error(err, os.path.join(cfg.workdir, "checkpoints")) from err
    except BaseException:
        if chief:
            remove_partial_run(cfg.workdir, before)
        raise


def _train(cfg: RunConfig, preset: dict, extra_callbacks, cluster: Cluster | None) -> dict:
    # Thread pools sized to the cores; a no-op once TensorFlow has run (scripts call it first).
    runtime.configure_threads(collectives=cfg.strategy == "mirrored" or cluster is not None)
    if cfg.deterministic:
        keras.utils.set_random_seed(cfg.seed)
        tf.config.experimental.enable_op_determinism()
    strategy = cluster.make_strategy() if cluster is not None else make_strategy(cfg.strategy)
    chief = cluster is None or cluster.is_chief
    os.makedirs(cfg.workdir, exist_ok=True)
    total_steps = cfg.epochs * cfg.steps_per_epoch
    trainer = build_trainer(cfg, preset, strategy, total_steps)
    # Every worker restores from the chief's directory (a filesystem all workers see).
    checkpointer = RunCheckpointer(trainer, os.path.join(cfg.workdir, "checkpoints"))
    initial_epoch = checkpointer.restore_latest()
    agree_across_replicas(strategy, initial_epoch, "the epoch to resume from")
    history_path = os.path.join(cfg.workdir, "history.csv")
    scratch = None
    if chief:
        # Rows of epochs after the restored checkpoint came from a run that died before
        # checkpointing them; they are replayed, so drop them (no duplicates in the log).
        cbs.truncate_history(history_path, initial_epoch)
        record_run(cfg, preset, strategy)
    else:
        # Saving is a collective: every worker saves, the others into a scratch directory
        # deleted at the end (the TF multi-worker guide's pattern).
        scratch = tempfile.mkdtemp(prefix=f"mtsyn_worker{cluster.task_index}_")
        checkpointer = RunCheckpointer(trainer, scratch, max_to_keep=1)

    image_size = preset["image_size"]
    dataset = _training_dataset(cfg, strategy, image_size, initial_epoch * cfg.steps_per_epoch)
    # Keras 3's evaluate does not run under MultiWorkerMirroredStrategy: a cluster run is
    # evaluated afterwards (scripts/evaluate.py on the chief's workdir).
    eval_ds = (
        _eval_dataset(cfg, image_size, strategy.num_replicas_in_sync) if cluster is None else None
    )
    callbacks = _run_callbacks(cfg, checkpointer, chief, initial_epoch, eval_ds)
    counter = StepCounter()
    callbacks += [*extra_callbacks, counter]
    start, logs = time.time(), {}
    try:
        if initial_epoch < cfg.epochs:
            logs = run_epochs(
                trainer,
                strategy,
                dataset,
                callbacks,
                epochs=cfg.epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=cfg.steps_per_epoch,
                jit_compile=cfg.jit_compile,
                verbose=cfg.verbose if chief else 0,
            )
        else:
            logging.info(
                "Run in %s already finished (%d epochs); evaluating only.", cfg.workdir, cfg.epochs
            )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    results = {
        "train_seconds": time.time() - start,
        "epochs": cfg.epochs,
        "steps": total_steps,
        # What this process did: a resumed run starts at the checkpoint's epoch and runs
        # only the remaining steps (the resume tests check both).
        "initial_epoch": initial_epoch,
        "steps_run": counter.steps,
        "final_logs": logs,
        "is_chief": chief,
        # Workers must agree bit for bit after an all-reduced update; compare this.
        "weights_sha256": weights_digest(trainer.model.weights + trainer.discriminator.weights),
    }
    if eval_ds is not None:
        evaluating = time.time()
        results["eval"] = {
            k: float(v) for k, v in trainer.evaluate(eval_ds, verbose=0, return_dict=True).items()
        }
        write_json_atomic(os.path.join(cfg.workdir, "eval.json"), results["eval"])
        logging.info("Held-out evaluation: %.1f s.", time.time() - evaluating)
    if chief:
        exporting = time.time()
        results["base_saved_model"] = export_base(
            trainer.model, os.path.join(cfg.workdir, "saved_model_base")
        )
        logging.info("Base SavedModel written in %.1f s.", time.time() - exporting)
    return results


def _run_callbacks(cfg: RunConfig, checkpointer, chief: bool, initial_epoch: int, eval_ds):
    """The run's callbacks, the same on every strategy; the chief alone writes logs.

    The history row is written before the checkpoint: a run killed between the two
    replays the epoch and truncate_history drops the row; the other order would lose it.
    """
    callbacks = [cbs.NonFiniteLossGuard(cfg.steps_per_epoch), cbs.SkippedStepsReport()]
    if chief:
        callbacks.append(
            keras.callbacks.CSVLogger(os.path.join(cfg.workdir, "history.csv"), append=True)
        )
    callbacks.append(cbs.EpochCheckpoint(checkpointer))
    if not chief:
        return callbacks
    # write_graph=False: the loop has no Keras train_function whose graph it would write.
    callbacks.append(
        EpochTensorBoard(
            os.path.join(cfg.workdir, "tensorboard"), update_freq="epoch", write_graph=False
        )
    )
    profile_steps = profiling.parse_profile_steps(cfg.profile_steps)
    if profile_steps is not None:
        callbacks.append(
            profiling.ProfileCallback(
                os.path.join(cfg.workdir, "profile"),
                profile_steps,
                initial_step=initial_epoch * cfg.steps_per_epoch,
            )
        )
    if cfg.image_summaries and eval_ds is not None:
        first = next(iter(eval_ds))
        callbacks.append(
            cbs.ImageSummaries(os.path.join(cfg.workdir, "tensorboard", "images"), first)
        )
    return callbacks


def _training_dataset(cfg: RunConfig, strategy, image_size: int, skip_steps: int):
    """The run's stream of global batches, split between replicas (``epoch_loop``)."""
    per_replica = cfg.batch_size * cfg.grad_accum_steps

    def global_batches():
        return pipeline.make_training_dataset(
            cfg.synthetic_dir,
            cfg.real_source,
            batch_size=per_replica * strategy.num_replicas_in_sync,
            image_size=image_size,
            grayscale=False,  # the trainer converts in-step (config.trainer.grayscale)
            seed=cfg.seed,
            deterministic=cfg.deterministic,
            places365_data_dir=cfg.places365_data_dir,
            **pipeline_options(cfg),
        ).skip(skip_steps)  # resume: the stream is a pure function of the seed

    return distribute_global_batches(strategy, global_batches, per_replica)


def _eval_dataset(cfg: RunConfig, image_size: int, replicas: int = 1):
    """Held-out batches of ``batch_size`` per replica (None without the split).

    With several replicas a final batch that does not split evenly is left out: Keras'
    ``evaluate`` under MirroredStrategy fails on replicas with unequal batches (TF 2.21).
    """
    try:
        shards.list_shards(cfg.synthetic_dir, cfg.eval_split)
    except ValueError:
        logging.warning(
            "No %r split in %s: skipping held-out evaluation.", cfg.eval_split, cfg.synthetic_dir
        )
        return None
    ds = pipeline.make_eval_dataset(
        cfg.synthetic_dir,
        cfg.eval_split,
        batch_size=cfg.batch_size * replicas,
        image_size=image_size,
    )
    ds = ds.map(lambda b: {k: b[k] for k in ("image", "depth", "normals", "contour", "valid")})
    if replicas > 1:
        ds = ds.filter(lambda b: tf.shape(b["image"])[0] % replicas == 0)
    return ds.take(cfg.eval_batches) if cfg.eval_batches else ds


def export_base(model, path: str) -> str:
    """SavedModel of the learned base + bottleneck: ``features(image) -> {conv1..fc7}``.

    Written to a temp directory and renamed, so ``path`` is either complete or absent.
    """
    size = model.image_size
    archive = keras.export.ExportArchive()
    archive.track(model)

    def features(image):
        return model.backbone(image, training=False)

    archive.add_endpoint(
        "serving_default",
        features,
        input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name="image")],
    )
    tmp = path + ".tmp"
    if tf.io.gfile.exists(tmp):
        tf.io.gfile.rmtree(tmp)
    archive.write_out(tmp, verbose=False)
    if tf.io.gfile.exists(path):
        tf.io.gfile.rmtree(path)
    tf.io.gfile.rename(tmp, path)
    return path


def untrained_metrics(cfg: RunConfig) -> dict:
    """Held-out metrics of a freshly initialised model (the baseline a run must beat)."""
    preset = get_preset(cfg.preset, **cfg.preset_overrides)
    keras.utils.set_random_seed(cfg.seed)
    trainer = build_trainer(cfg, preset, tf.distribute.get_strategy(), total_steps=1)
    eval_ds = _eval_dataset(cfg, preset["image_size"])
    if eval_ds is None:
        return {}
    return {k: float(v) for k, v in trainer.evaluate(eval_ds, verbose=0, return_dict=True).items()}
