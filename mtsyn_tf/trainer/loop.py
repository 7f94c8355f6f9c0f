"""A whole training run: data, strategy, trainer, checkpoints, summaries, final export.

``train(RunConfig(...))`` is what ``scripts/train.py`` and the demo call. It checks every
input before the first step (preset, tap, loss weights, data paths, image sizes, an
existing run's preset) and resumes from ``<workdir>/checkpoints`` when present.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import keras
import tensorflow as tf
from absl import logging

from mtsyn_tf import runtime
from mtsyn_tf.data import pipeline, shards
from mtsyn_tf.models import build_discriminator, build_multitask_model, get_preset
from mtsyn_tf.trainer import callbacks as cbs
from mtsyn_tf.trainer import precision as mp
from mtsyn_tf.trainer import profiling
from mtsyn_tf.trainer.checkpointing import RunCheckpointer
from mtsyn_tf.trainer.config import TrainerConfig
from mtsyn_tf.trainer.mtl_adversarial import NONFINITE_POLICIES, MultiTaskAdversarialTrainer
from mtsyn_tf.trainer.run_record import (
    data_manifest,
    git_commit,
    package_versions,
    write_json_atomic,
)
from mtsyn_tf.trainer.schedule import make_adam, reference_lr_schedule

STRATEGIES = ("auto", "one_device", "mirrored")
OPTIMIZERS = ("adam", "sgd")


@dataclasses.dataclass
class RunConfig:
    """Everything a run needs; the resolved copy is written to ``<workdir>/config.json``."""

    workdir: str
    synthetic_dir: str
    real_source: str = "embedded"
    places365_data_dir: str | None = None
    preset: str = "paper_alexnet"
    preset_overrides: dict = dataclasses.field(default_factory=dict)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    batch_size: int = 28
    epochs: int = 30
    steps_per_epoch: int = 1000
    learning_rate: float = 1e-3
    beta_1: float = 0.5
    lr_drops: tuple = (0.6, 0.9)
    seed: int = 0
    deterministic: bool = True
    strategy: str = "auto"
    eval_split: str = "test"
    eval_batches: int | None = None
    image_summaries: bool = True
    verbose: int = 1
    # Scale, speed, robustness (README: "Distributed training, mixed precision, fault tolerance").
    precision: str = "float32"  # or "mixed": mixed_float16 on GPU, mixed_bfloat16 on CPU
    grad_accum_steps: int = 1  # micro-batches of batch_size per optimizer step
    nonfinite_policy: str = "stop"  # or "skip": roll back non-finite stages, count them
    optimizer: str = "adam"  # "sgd": plain SGD with the same schedule (comparisons)
    jit_compile: bool = False  # XLA for the train step (one device only)
    profile_steps: tuple | None = None  # (START, STOP): profiler trace in <workdir>/profile

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["trainer"] = self.trainer.to_dict()
        d["lr_drops"] = list(self.lr_drops)
        d["profile_steps"] = None if self.profile_steps is None else list(self.profile_steps)
        return d


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
    try:
        shards.list_shards(cfg.synthetic_dir, "train")
    except ValueError as err:
        raise ValueError(
            f"--synthetic_dir has no training shards: {err} Render a set with "
            "scripts/render.py or convert one with scripts/make_tfrecords.py."
        ) from None
    existing = os.path.join(cfg.workdir, "config.json")
    if os.path.exists(existing):
        with open(existing) as f:
            previous = json.load(f)
        prev_preset = previous.get("resolved_preset")
        if prev_preset is not None and prev_preset != json.loads(json.dumps(preset)):
            raise ValueError(
                f"{cfg.workdir} holds a run of a different model (preset "
                f"{previous.get('preset')!r} with different settings) than requested "
                f"({cfg.preset!r}). Use another --workdir or the same preset to resume."
            )
    return preset


def _record_run(cfg: RunConfig, preset: dict, strategy) -> None:
    write_json_atomic(
        os.path.join(cfg.workdir, "config.json"),
        {
            **cfg.to_dict(),
            "resolved_preset": preset,
            "num_replicas": strategy.num_replicas_in_sync,
            "dtype_policy": mp.resolve_policy(cfg.precision),
            "versions": package_versions(),
            "git_commit": git_commit(),
            "data_manifests": {
                "synthetic": data_manifest(cfg.synthetic_dir),
                "real": data_manifest(cfg.real_source)
                if os.path.isdir(cfg.real_source)
                else cfg.real_source,
            },
        },
    )


def build_trainer(
    cfg: RunConfig, preset: dict, strategy, total_steps: int
) -> MultiTaskAdversarialTrainer:
    """Model, D, both optimizers and their slots, all created in the strategy's scope.

    Uses the global Keras dtype policy of the caller (``train`` sets it from
    ``cfg.precision``); under ``mixed_float16`` both optimizers get loss scaling.
    """
    sync_bn = strategy.num_replicas_in_sync > 1
    policy = keras.mixed_precision.dtype_policy().name
    if cfg.jit_compile and strategy.num_replicas_in_sync > 1:
        raise ValueError(
            "jit_compile (XLA) does not work with a distribution strategy in TF 2.21. "
            f"Received: jit_compile=True with {strategy.num_replicas_in_sync} replicas"
        )
    with strategy.scope():
        model = build_multitask_model(preset, sync_batchnorm=sync_bn)
        disc = build_discriminator(preset, sync_batchnorm=sync_bn)
        trainer = MultiTaskAdversarialTrainer(
            model,
            disc,
            cfg.trainer,
            grad_accum_steps=cfg.grad_accum_steps,
            nonfinite_policy=cfg.nonfinite_policy,
        )
        trainer.compile(
            task_optimizer=mp.wrap_optimizer(_make_optimizer(cfg, total_steps), policy),
            disc_optimizer=mp.wrap_optimizer(_make_optimizer(cfg, total_steps), policy),
            jit_compile=cfg.jit_compile,
        )
        trainer.build_all()
        trainer.build_optimizers()
    return trainer


def _make_optimizer(cfg: RunConfig, total_steps: int):
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(
            learning_rate=reference_lr_schedule(cfg.learning_rate, total_steps, cfg.lr_drops)
        )
    return make_adam(cfg.learning_rate, total_steps, cfg.beta_1, cfg.lr_drops)


def train(cfg: RunConfig, extra_callbacks=()) -> dict:
    """Runs (or resumes) training; returns final held-out metrics and artifact paths.

    ``extra_callbacks`` are appended after the run's own (checkpoints come first, so a
    callback that stops training at an epoch end still leaves that epoch's checkpoint).
    The Keras dtype policy of ``cfg.precision`` holds inside the call and is restored after.
    """
    preset = _check_run_inputs(cfg)
    with mp.use_policy(mp.resolve_policy(cfg.precision)):
        return _train(cfg, preset, extra_callbacks)


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

    results = {"train_seconds": train_seconds, "epochs": cfg.epochs, "steps": total_steps}
    if eval_ds is not None:
        results["eval"] = {
            k: float(v) for k, v in trainer.evaluate(eval_ds, verbose=0, return_dict=True).items()
        }
        write_json_atomic(os.path.join(cfg.workdir, "eval.json"), results["eval"])
    results["base_saved_model"] = export_base(
        trainer.model, os.path.join(cfg.workdir, "saved_model_base")
    )
    return results


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
