"""A whole training run: data, strategy, trainer, checkpoints, summaries, final export.

``train(RunConfig(...))`` is what ``scripts/train.py`` and the demo call. It checks every
input before the first step (preset, tap, loss weights, data paths, image sizes, an
existing run's preset) and resumes from ``<workdir>/checkpoints`` when present.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import keras
import tensorflow as tf
from absl import logging

from mtsyn_tf import runtime
from mtsyn_tf.data import pipeline, shards
from mtsyn_tf.io_utils import check_output_dir
from mtsyn_tf.models import get_preset
from mtsyn_tf.models.preprocessor import InputContract
from mtsyn_tf.trainer import callbacks as cbs
from mtsyn_tf.trainer import precision as mp
from mtsyn_tf.trainer import profiling
from mtsyn_tf.trainer.build import build_trainer
from mtsyn_tf.trainer.checkpointing import RunCheckpointer
from mtsyn_tf.trainer.config import (  # noqa: F401  (re-exported: older imports)
    DISC_OPTIMIZERS,
    OPTIMIZERS,
    STRATEGIES,
    RunConfig,
    TrainerConfig,
)
from mtsyn_tf.trainer.mtl_adversarial import NONFINITE_POLICIES
from mtsyn_tf.trainer.run_record import (
    data_manifest,
    git_commit,
    package_versions,
    write_json_atomic,
)


def make_strategy(name: str) -> tf.distribute.Strategy:
    """``auto``: MirroredStrategy on several GPUs, else TF's default strategy (one device).

    ``auto`` prefers the default strategy over ``OneDeviceStrategy`` on one device because
    Keras re-distributes the input pipeline under ``OneDeviceStrategy`` and we measured
    that to reorder some augmentation seeds from run to run (TF 2.21), which breaks exact
    resume; the default strategy keeps the pipeline bit-reproducible.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}. Received: strategy={name!r}")
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    return tf.distribute.get_strategy()


def _check_run_inputs(cfg: RunConfig) -> dict:
    """Fails fast, before any model is built, on anything that would fail later."""
    preset = get_preset(cfg.preset, **cfg.preset_overrides)
    cfg.trainer.validate(preset["arch"], preset["tasks"])
    for name in ("batch_size", "epochs", "steps_per_epoch", "grad_accum_steps"):
        if getattr(cfg, name) <= 0:
            raise ValueError(f"{name} must be > 0. Received: {name}={getattr(cfg, name)}")
    mp.resolve_policy(cfg.precision)
    profiling.parse_profile_steps(cfg.profile_steps)
    if cfg.nonfinite_policy not in NONFINITE_POLICIES:
        raise ValueError(
            f"nonfinite_policy must be one of {NONFINITE_POLICIES}. "
            f"Received: nonfinite_policy={cfg.nonfinite_policy!r}"
        )
    if cfg.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}. Received: {cfg.optimizer!r}")
    if cfg.disc_optimizer not in DISC_OPTIMIZERS:
        raise ValueError(
            f"disc_optimizer must be one of {DISC_OPTIMIZERS}. Received: {cfg.disc_optimizer!r}"
        )
    if not 0 <= cfg.disc_momentum < 1 or not cfg.disc_weight_decay >= 0:
        raise ValueError(
            "disc_momentum must be in [0, 1) and disc_weight_decay >= 0. Received: "
            f"disc_momentum={cfg.disc_momentum}, disc_weight_decay={cfg.disc_weight_decay}"
        )
    for name in ("min_scale", "real_min_scale"):
        value = getattr(cfg, name)
        if value is not None and not 0 < value <= 1:
            raise ValueError(f"{name} must be in (0, 1]. Received: {name}={value}")
    _check_training_data(cfg)
    check_output_dir(cfg.workdir, "--workdir")
    if not cfg.restart:
        _check_resume_config(cfg, preset)
    return preset


# Shards up to this size are hashed before training (about a second per GiB): a wrong or
# stale sha256 is caught before the first step. Larger sets get the free size check only;
# a corrupt record then stops training with the shard named (see _name_corrupt_shard).
VERIFY_SHA256_MAX_BYTES = 1 << 30


def _check_training_data(cfg: RunConfig) -> None:
    try:
        manifest = shards.read_manifest(cfg.synthetic_dir)
        shards.list_shards(cfg.synthetic_dir, "train")
    except ValueError as err:
        raise ValueError(
            f"--synthetic_dir has no training shards: {err} Render a set with "
            "scripts/render.py or convert one with scripts/make_tfrecords.py."
        ) from None
    if manifest.get("kind") != "synthetic":
        raise ValueError(
            f"--synthetic_dir holds {manifest.get('kind')!r} shards; expected 'synthetic' "
            f"(rendered or converted with labels). Received: {cfg.synthetic_dir!r}"
        )
    _verify(cfg.synthetic_dir, "train")
    real = cfg.real_source
    if os.path.isfile(os.path.join(real, shards.MANIFEST_NAME)):
        if shards.read_manifest(real).get("kind") != "real":
            raise ValueError(
                f"--real_source holds {shards.read_manifest(real).get('kind')!r} shards; "
                f"expected 'real' (photos). Received: {real!r}"
            )
        _verify(real, "train")
    elif real not in ("embedded", "places365") and not os.path.isdir(real):
        raise ValueError(
            "--real_source must be 'embedded', 'places365', a photo folder or a directory of "
            f"real shards. Received: {real!r}"
        )


def _verify(data_dir: str, split: str) -> None:
    large = shards.total_bytes(data_dir, split) > VERIFY_SHA256_MAX_BYTES
    if large:
        logging.info(
            "%s is large: checking shard sizes only (not sha256) before training.", data_dir
        )
    shards.verify_shards(data_dir, split, level="size" if large else "sha256")


# Settings that may change between a run and its resumption: they do not change what is
# trained (paths are compared through the data manifests instead).
RESUMABLE_FIELDS = frozenset(
    {
        "workdir",
        "verbose",
        "image_summaries",
        "eval_batches",
        "eval_split",
        "profile_steps",
        "places365_data_dir",
        "synthetic_dir",
        "real_source",
        "restart",
    }
)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict) and key != "preset_overrides":
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _check_resume_config(cfg: RunConfig, preset: dict) -> None:
    """Refuses to resume a run whose recorded settings differ from the requested ones.

    Resuming skips ``epoch × steps_per_epoch`` batches of a stream seeded by ``seed`` and
    continues a learning-rate schedule sized by ``epochs × steps_per_epoch``: with another
    batch size, seed, step count, data or loss setting the result would be neither run.
    """
    existing = os.path.join(cfg.workdir, "config.json")
    if not os.path.exists(existing):
        return
    try:
        with open(existing, encoding="utf-8") as f:
            previous = json.load(f)
        if not isinstance(previous, dict):
            raise ValueError(f"a JSON object, not {type(previous).__name__}")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(
            f"Cannot resume: {existing} is unreadable ({err}). Pass --restart to delete the "
            "run and start over, or use another --workdir."
        ) from None
    prev_preset = previous.get("resolved_preset")
    if prev_preset is not None and prev_preset != json.loads(json.dumps(preset)):
        raise ValueError(
            f"{cfg.workdir} holds a run of a different model (preset "
            f"{previous.get('preset')!r} with different settings) than requested "
            f"({cfg.preset!r}). Use another --workdir, the same preset to resume, or "
            "--restart to start over."
        )
    requested = _flatten(json.loads(json.dumps(cfg.to_dict(), default=str)))
    recorded = _flatten({k: v for k, v in previous.items() if k in cfg.to_dict()})
    differing = [
        f"{key} ({recorded[key]!r} -> {requested[key]!r})"
        for key in sorted(requested)
        if key.split(".")[0] not in RESUMABLE_FIELDS
        and key in recorded
        and recorded[key] != requested[key]
    ]
    manifests = previous.get("data_manifests") or {}
    current = _data_manifests(cfg)
    for name, flag in (("synthetic", "synthetic_dir"), ("real", "real_source")):
        if name in manifests and manifests[name] != current[name]:
            differing.append(f"{flag} (other data than recorded)")
    if differing:
        raise ValueError(
            f"Cannot resume {cfg.workdir}: its config.json records other settings: "
            f"{', '.join(differing)}. Pass the recorded values to resume, --restart to delete "
            "the run and start over, or use another --workdir."
        )


# What a run writes into its workdir (deleted by restart=True; nothing else is touched).
RUN_ARTIFACTS = (
    "checkpoints",
    "config.json",
    "history.csv",
    "eval.json",
    "tensorboard",
    "profile",
    "saved_model_base",
)


def _delete_run(workdir: str) -> None:
    for name in RUN_ARTIFACTS:
        path = os.path.join(workdir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)


def _data_manifests(cfg: RunConfig) -> dict:
    return {
        "synthetic": data_manifest(cfg.synthetic_dir),
        # A photo folder has no manifest: its path stands for it.
        "real": (data_manifest(cfg.real_source) if os.path.isdir(cfg.real_source) else None)
        or cfg.real_source,
    }


def _record_run(cfg: RunConfig, preset: dict, strategy) -> None:
    write_json_atomic(
        os.path.join(cfg.workdir, "config.json"),
        {
            **cfg.to_dict(),
            "resolved_preset": preset,
            # What the model must be fed at test time; every loader reads this back.
            "input_contract": InputContract.for_grayscale(cfg.trainer.grayscale).record(),
            "num_replicas": strategy.num_replicas_in_sync,
            "dtype_policy": mp.resolve_policy(cfg.precision),
            "versions": package_versions(),
            "git_commit": git_commit(),
            "data_manifests": _data_manifests(cfg),
        },
    )


def pipeline_options(cfg: RunConfig) -> dict:
    """The augmentation and resampling arguments of ``pipeline.make_training_dataset``."""
    return {
        "min_scale": cfg.min_scale,
        "real_min_scale": cfg.real_min_scale,
        "synthetic_jitter": cfg.synthetic_jitter,
        "real_jitter": cfg.real_jitter,
        "min_edge_pixels": cfg.trainer.min_edge_pixels,
    }


def train(cfg: RunConfig, extra_callbacks=()) -> dict:
    """Runs (or resumes) training; returns final held-out metrics and artifact paths.

    ``extra_callbacks`` are appended after the run's own (checkpoints come first, so a
    callback that stops training at an epoch end still leaves that epoch's checkpoint).
    The Keras dtype policy of ``cfg.precision`` holds inside the call and is restored after.
    """
    preset = _check_run_inputs(cfg)
    if cfg.restart:
        _delete_run(cfg.workdir)
    before = sorted(os.listdir(cfg.workdir)) if os.path.isdir(cfg.workdir) else None
    try:
        try:
            with mp.use_policy(mp.resolve_policy(cfg.precision)):
                return _train(cfg, preset, extra_callbacks)
        except tf.errors.DataLossError as err:  # a corrupt record while training/evaluating
            _name_corrupt_shard(cfg, err)
    except BaseException:
        _remove_partial_run(cfg.workdir, before)
        raise


def _remove_partial_run(workdir: str, before: list | None) -> None:
    """After a failure with no checkpoint to resume from, removes what this call wrote.

    A run that checkpointed stays (re-running resumes it); otherwise nothing half-written
    is left: the workdir if this call created it, else the entries it added.
    """
    if RunCheckpointer.has_checkpoint(os.path.join(workdir, "checkpoints")):
        return
    if before is None:
        shutil.rmtree(workdir, ignore_errors=True)
        return
    for name in set(os.listdir(workdir)) - set(before) if os.path.isdir(workdir) else ():
        path = os.path.join(workdir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)


def _train(cfg: RunConfig, preset: dict, extra_callbacks) -> dict:
    # Thread pools sized to the cores; a no-op once TensorFlow has run (scripts call it first).
    runtime.configure_threads(collectives=cfg.strategy == "mirrored")
    if cfg.deterministic:
        keras.utils.set_random_seed(cfg.seed)
        tf.config.experimental.enable_op_determinism()
    strategy = make_strategy(cfg.strategy)
    os.makedirs(cfg.workdir, exist_ok=True)
    total_steps = cfg.epochs * cfg.steps_per_epoch
    trainer = build_trainer(cfg, preset, strategy, total_steps)
    checkpointer = RunCheckpointer(trainer, os.path.join(cfg.workdir, "checkpoints"))
    initial_epoch = checkpointer.restore_latest()
    history_path = os.path.join(cfg.workdir, "history.csv")
    # Rows of epochs after the restored checkpoint came from a run that died before
    # checkpointing them; they are replayed, so drop them (no duplicates in the log).
    cbs.truncate_history(history_path, initial_epoch)
    _record_run(cfg, preset, strategy)

    image_size = preset["image_size"]
    replicas = strategy.num_replicas_in_sync
    dataset = pipeline.make_training_dataset(
        cfg.synthetic_dir,
        cfg.real_source,
        batch_size=cfg.batch_size * replicas * cfg.grad_accum_steps,
        image_size=image_size,
        grayscale=False,  # the trainer converts in-step (config.trainer.grayscale)
        seed=cfg.seed,
        deterministic=cfg.deterministic,
        places365_data_dir=cfg.places365_data_dir,
        **pipeline_options(cfg),
    )
    # Resume: the stream is a pure function of the seed, so skipping replays it exactly.
    dataset = dataset.skip(initial_epoch * cfg.steps_per_epoch)

    # The history row is written before the checkpoint: a run killed between the two
    # replays the epoch and truncate_history drops the row; the other order would lose it.
    callbacks = [
        cbs.NonFiniteLossGuard(cfg.steps_per_epoch),
        cbs.SkippedStepsReport(),
        keras.callbacks.CSVLogger(history_path, append=True),
        cbs.EpochCheckpoint(checkpointer),
        keras.callbacks.TensorBoard(os.path.join(cfg.workdir, "tensorboard"), update_freq="epoch"),
    ]
    profile_steps = profiling.parse_profile_steps(cfg.profile_steps)
    if profile_steps is not None:
        callbacks.append(
            profiling.ProfileCallback(
                os.path.join(cfg.workdir, "profile"),
                profile_steps,
                initial_step=initial_epoch * cfg.steps_per_epoch,
            )
        )
    eval_ds = _eval_dataset(cfg, image_size)
    if cfg.image_summaries and eval_ds is not None:
        first = next(iter(eval_ds))
        callbacks.append(
            cbs.ImageSummaries(os.path.join(cfg.workdir, "tensorboard", "images"), first)
        )

    callbacks.extend(extra_callbacks)
    counter = _StepCounter()
    callbacks.append(counter)
    start = time.time()
    if initial_epoch < cfg.epochs:
        trainer.fit(
            dataset,
            epochs=cfg.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=cfg.steps_per_epoch,
            callbacks=callbacks,
            verbose=cfg.verbose,
        )
    else:
        logging.info(
            "Run in %s already finished (%d epochs); evaluating only.", cfg.workdir, cfg.epochs
        )
    train_seconds = time.time() - start

    results = {
        "train_seconds": train_seconds,
        "epochs": cfg.epochs,
        "steps": total_steps,
        # What this process did: a resumed run starts at the checkpoint's epoch and runs
        # only the remaining steps (the resume tests check both).
        "initial_epoch": initial_epoch,
        "steps_run": counter.steps,
    }
    if eval_ds is not None:
        results["eval"] = {
            k: float(v) for k, v in trainer.evaluate(eval_ds, verbose=0, return_dict=True).items()
        }
        write_json_atomic(os.path.join(cfg.workdir, "eval.json"), results["eval"])
    results["base_saved_model"] = export_base(
        trainer.model, os.path.join(cfg.workdir, "saved_model_base")
    )
    return results


def _name_corrupt_shard(cfg: RunConfig, err: tf.errors.DataLossError) -> None:
    """A ``DataLossError`` names no file: re-reads the shards to find and name the bad one."""
    dirs = [cfg.synthetic_dir]
    if os.path.isfile(os.path.join(cfg.real_source, shards.MANIFEST_NAME)):
        dirs.append(cfg.real_source)
    for data_dir in dirs:
        shards.find_corrupt_shard(data_dir)  # raises ValueError naming the shard
    first = (err.message or "").strip().splitlines()[:1]
    raise ValueError(
        f"Corrupt training data ({first[0] if first else 'DataLossError'}), but every shard "
        f"of {dirs} reads back cleanly now. Received: {dirs}"
    ) from err


class _StepCounter(keras.callbacks.Callback):
    """Counts the training steps this process ran (``results["steps_run"]``)."""

    def __init__(self):
        super().__init__()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1


def _eval_dataset(cfg: RunConfig, image_size: int):
    try:
        shards.list_shards(cfg.synthetic_dir, cfg.eval_split)
    except ValueError:
        logging.warning(
            "No %r split in %s: skipping held-out evaluation.", cfg.eval_split, cfg.synthetic_dir
        )
        return None
    ds = pipeline.make_eval_dataset(
        cfg.synthetic_dir, cfg.eval_split, batch_size=cfg.batch_size, image_size=image_size
    )
    ds = ds.map(lambda b: {k: b[k] for k in ("image", "depth", "normals", "contour", "valid")})
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
