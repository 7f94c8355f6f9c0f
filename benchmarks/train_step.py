"""Training-step speed, FLOPs, fraction of matmul peak, memory and input headroom.

For each preset (default: paper_alexnet at batch 4 and small at batch 16) on one
device, with random input tensors already on the device:

* train images/s of the full two-stage step, and its breakdown: stage 1 (B/H), stage 2
  (D, including the real images' forward pass to the tap) and the input pipeline's time
  for one batch when run alone (in training it overlaps the step via prefetch);
* FLOPs per image, counted by TF's graph profiler (``tf.compat.v1.profiler``,
  ``float_operation``) on the *forward* graphs at batch 1: F_m (B + heads), F_tap (B up
  to D's tap) and F_D (D on the tap). A step costs ≈ 3·F_m (forward + backward of
  B/H) + 2·F_D (D forward + input gradient, stage 1) + F_tap (real forward, stage 2)
  + 2·3·F_D (D forward/backward on pooled synthetic and real features): the usual
  "backward ≈ 2× forward" rule, stated per stage;
* the achieved fraction of the dense-matmul peak measured in the same run
  (``matmul_peak.py``), float32 (or bfloat16 with --precision=mixed);
* peak host memory (``ru_maxrss``, cumulative over the process) and an estimate of
  the training memory at the paper's 28 images per replica from shapes: parameters,
  Adam's two slots and gradients (4 bytes each) plus activations (the float outputs of
  every op in the forward graph at batch 1, × 28 — an upper bound of what backprop
  keeps, since some are fused or freed);
* the input pipeline's images/s (decode + augment on this machine's cores, on a
  temporary 320×240 synthetic dataset and the embedded real photos) ÷ the training
  images/s: below 1 the GPU/CPU waits for data.

    python benchmarks/train_step.py                   # CPU, both presets
    python benchmarks/train_step.py --device=gpu      # same on a GPU
    python benchmarks/train_step.py --jit             # XLA for stage 1 (one device)
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from matmul_peak import device_name, matmul_gflops  # noqa: E402

FLAGS = flags.FLAGS


def _define_flags():
    # Only when run as a script: other benchmarks import this module's helpers.
    flags.DEFINE_list("presets", ["paper_alexnet:4", "small:16"], "PRESET:BATCH entries.")
    flags.DEFINE_enum("device", "cpu", ["cpu", "gpu"], "Device for the step.")
    flags.DEFINE_enum("precision", "float32", ["float32", "mixed"], "Training precision.")
    flags.DEFINE_bool("jit", False, "XLA-compile stage 1's forward/backward (one device).")
    flags.DEFINE_integer("steps", 5, "Timed steps per measurement.")
    flags.DEFINE_integer("warmup", 2, "Untimed steps first (tracing).")
    flags.DEFINE_integer("matmul_n", 2048, "Side of the peak-measuring matmul.")
    flags.DEFINE_integer("pipeline_batches", 8, "Timed input batches.")
    flags.DEFINE_integer("memory_batch", 28, "Batch per replica for the memory estimate.")


# ---------------------------------------------------------------------- model pieces
def _build(preset: str, batch: int, policy: str):
    """The trainer a run builds (``mtsyn_tf.trainer.build``): Adam for B/H, the reference's
    SGD (momentum 0.9, weight decay 5e-4) for D, with the run's schedules; ``policy`` is
    the Keras dtype policy the caller has set."""
    import keras
    import tensorflow as tf

    from mtsyn_tf.trainer.build import build_trainer
    from mtsyn_tf.trainer.config import RunConfig

    del policy  # build_trainer reads the global dtype policy (mp.use_policy in main)
    keras.utils.set_random_seed(0)
    cfg = RunConfig(workdir="", synthetic_dir="", preset=preset, batch_size=batch)
    total_steps = cfg.epochs * cfg.steps_per_epoch
    return build_trainer(cfg, preset, tf.distribute.get_strategy(), total_steps)


def _random_batch(batch: int, size: int) -> dict:
    rng = np.random.default_rng(0)
    shape = (batch, size, size)
    valid = (rng.random((*shape, 1)) < 0.9).astype(np.float32)
    normals = rng.normal(size=(*shape, 3)).astype(np.float32)
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    data = {
        "synthetic": {
            "image": rng.random((*shape, 3), dtype=np.float32),
            "depth": (rng.uniform(0.5, 8.0, (*shape, 1)) * valid).astype(np.float32),
            "normals": normals * valid,
            "contour": (rng.random((*shape, 1)) < 0.1).astype(np.float32),
            "valid": valid,
        },
        "real": {"image": rng.random((*shape, 3), dtype=np.float32)},
    }
    return tf.nest.map_structure(tf.constant, data)


def _time(fn, steps: int, warmup: int) -> float:
    """Mean seconds per call (each call's outputs fetched to the host)."""
    for _ in range(warmup):
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, fn())
    start = time.perf_counter()
    for _ in range(steps):
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, fn())
    return (time.perf_counter() - start) / steps


# ---------------------------------------------------------------------- FLOPs and memory
def _forward_flops(fn, *specs) -> int:
    """FLOPs of ``fn``'s graph at the given (static) input specs, by TF's profiler."""
    concrete = tf.function(fn).get_concrete_function(*specs)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    stats = tf.compat.v1.profiler.profile(graph=concrete.graph, cmd="op", options=options)
    return int(stats.total_float_ops)


def _activation_bytes(fn, *specs) -> int:
    """Bytes of every float tensor the forward graph produces (batch 1)."""
    graph = tf.function(fn).get_concrete_function(*specs).graph
    total = 0
    for op in graph.get_operations():
        # Casts (mixed precision) and variable reads are not activations.
        if op.type in ("ReadVariableOp", "Const", "Placeholder", "Identity", "VarHandleOp", "Cast"):
            continue
        for out in op.outputs:
            if out.dtype.is_floating and out.shape.is_fully_defined():
                total += out.shape.num_elements() * out.dtype.size
    return total


def flops_and_memory(trainer, memory_batch: int) -> dict:
    size = trainer.model.image_size
    image = tf.TensorSpec([1, size, size, 3], tf.float32)
    tap_shape = trainer.model.backbone(tf.zeros([1, size, size, 3]), up_to=trainer.tap)[
        trainer.tap
    ].shape
    tap = tf.TensorSpec(tap_shape, tf.float32)
    model_fn = lambda x: trainer.model(x, training=True)  # noqa: E731
    tap_fn = lambda x: trainer.model.backbone(x, training=True, up_to=trainer.tap)  # noqa: E731
    disc_fn = lambda z: trainer.discriminator(z, training=True)  # noqa: E731
    from mtsyn_tf.models.layers import ConvBNAct

    # Nominal FLOPs: every tap at every output, zero padding included (the convention of
    # the SPEC's 75 GFLOP and of fvcore/thop), so a form that skips the padding's products
    # (ConvBNAct.skip_padding_rows) shows as a faster step, not as less work.
    convs = [
        layer
        for model in (trainer.model, trainer.discriminator)
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, ConvBNAct)
    ]
    settings = [layer.skip_padding_rows for layer in convs]
    for layer in convs:
        layer.skip_padding_rows = False
    try:
        f_m, f_tap, f_d = (
            _forward_flops(model_fn, image),
            _forward_flops(tap_fn, image),
            _forward_flops(disc_fn, tap),
        )
    finally:  # as the caller had them (a variant may have set some already)
        for layer, setting in zip(convs, settings):
            layer.skip_padding_rows = setting
    params = sum(
        int(np.prod(v.shape)) for v in trainer.model.weights + trainer.discriminator.weights
    )
    activations = _activation_bytes(model_fn, image) + 2 * _activation_bytes(disc_fn, tap)
    return {
        "forward_flops_model": f_m,
        "forward_flops_tap": f_tap,
        "forward_flops_disc": f_d,
        "train_flops_per_image": 3 * f_m + 2 * f_d + f_tap + 6 * f_d,
        "params": params,
        # weights + Adam m, v + gradients, float32
        "param_optimizer_bytes": params * 4 * 4,
        "activation_bytes": activations * memory_batch,
    }


# ---------------------------------------------------------------------- input pipeline
def pipeline_images_per_second(preset_size: int, batch: int, batches: int) -> float:
    from input_pipeline import _sample  # benchmarks/input_pipeline.py's 320×240 records

    from mtsyn_tf.data import pipeline, schema, shards

    with tempfile.TemporaryDirectory() as tmp:
        records = (schema.encode_synthetic(_sample(240, 320, i)) for i in range(32))
        shards.write_shards(records, tmp, "train", num_shards=4, kind="synthetic", source="bench")
        ds = pipeline.make_training_dataset(
            tmp, "embedded", batch, preset_size, grayscale=False, seed=0, deterministic=True
        )
        iterator = iter(ds)
        for _ in range(2):
            next(iterator)
        start = time.perf_counter()
        for _ in range(batches):
            next(iterator)
        return batches * batch / (time.perf_counter() - start)


# ---------------------------------------------------------------------- main
def benchmark(preset: str, batch: int, policy: str, peak: float) -> dict:
    trainer = _build(preset, batch, policy)
    size = trainer.model.image_size
    data = _random_batch(batch, size)
    if FLAGS.jit:
        trainer._bh_gradients = tf.function(trainer._bh_gradients, jit_compile=True)
    step = tf.function(trainer.train_step)
    stage_bh = tf.function(lambda: trainer.stage_bh(data["synthetic"], data["real"]["image"]))
    # Stage 1 extracts both feature batches (z_y too: Algorithm 1, before the update).
    z_x, z_y = stage_bh()
    stage_d = tf.function(lambda: trainer.stage_d(z_x, z_y))
    t_step = _time(lambda: step(data), FLAGS.steps, FLAGS.warmup)
    t_bh = _time(stage_bh, FLAGS.steps, FLAGS.warmup)
    t_d = _time(stage_d, FLAGS.steps, FLAGS.warmup)
    info = flops_and_memory(trainer, FLAGS.memory_batch)
    images_per_s = batch / t_step
    pipe = pipeline_images_per_second(size, batch, FLAGS.pipeline_batches)
    return {
        "preset": preset,
        "batch": batch,
        "images_per_s": images_per_s,
        "step_s": t_step,
        "stage_bh_s": t_bh,
        "stage_d_s": t_d,
        "input_s_per_batch": batch / pipe,
        "gflops_per_image": info["train_flops_per_image"] / 1e9,
        "peak_fraction": images_per_s * info["train_flops_per_image"] / 1e9 / peak,
        "pipeline_images_per_s": pipe,
        "pipeline_ratio": pipe / images_per_s,
        "max_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "estimate_gib_at_memory_batch": (info["param_optimizer_bytes"] + info["activation_bytes"])
        / 2**30,
        "params_m": info["params"] / 1e6,
    }


def main(argv):
    del argv
    from mtsyn_tf.trainer import precision as mp

    policy = mp.resolve_policy(FLAGS.precision, FLAGS.device)
    # Only the peaks the policy's step can reach: a bfloat16 matmul under
    # ONEDNN_MAX_CPU_ISA=AVX2 on a CPU with AVX512_BF16 (how AVX2 is emulated here) aborts
    # the process inside oneDNN, and an fp32 run does not need it.
    step_dtype = {"float32": "float32", "mixed_float16": "float16"}.get(policy, "bfloat16")
    peaks = {
        d: matmul_gflops(d, FLAGS.matmul_n, FLAGS.device)
        for d in dict.fromkeys(("float32", step_dtype))
    }
    peak = peaks[step_dtype]
    print(
        f"device={FLAGS.device} cores={os.cpu_count()} policy={policy} jit={FLAGS.jit} "
        "matmul peak: " + ", ".join(f"{d} {g:.1f} GFLOP/s" for d, g in peaks.items())
    )
    header = (
        f"{'preset':14s} {'batch':>5s} {'img/s':>7s} {'step s':>7s} {'B/H s':>7s} {'D s':>7s} "
        f"{'input s':>7s} {'GFLOP/img':>9s} {'%peak':>6s} {'pipe/train':>10s} {'maxRSS GiB':>10s} "
        f"{'est GiB@' + str(FLAGS.memory_batch):>11s}"
    )
    print(header)
    with mp.use_policy(policy), tf.device(device_name(FLAGS.device)):
        for entry in FLAGS.presets:
            name, _, batch = entry.partition(":")
            r = benchmark(name, int(batch or 16), policy, peak)
            print(
                f"{r['preset']:14s} {r['batch']:5d} {r['images_per_s']:7.2f} {r['step_s']:7.3f} "
                f"{r['stage_bh_s']:7.3f} {r['stage_d_s']:7.3f} {r['input_s_per_batch']:7.3f} "
                f"{r['gflops_per_image']:9.2f} {100 * r['peak_fraction']:5.1f}% "
                f"{r['pipeline_ratio']:10.2f} {r['max_rss_gib']:10.2f} "
                f"{r['estimate_gib_at_memory_batch']:11.2f}",
                flush=True,
            )


if __name__ == "__main__":
    _define_flags()
    app.run(main)
