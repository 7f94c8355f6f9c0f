"""Throughput of the training input pipeline (decode + augment), images per second.

Writes a temporary synthetic dataset (tilted-plane geometry, noise photos — PNG's worst
case — at SceneNet's 320×240 by default), then times ``make_training_dataset`` at
227×227, batch 16, on a fixed number of CPU cores, for the synthetic branch alone, the
embedded real branch alone, and the zipped training batches.

    python benchmarks/input_pipeline.py --num_cores=2
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLAGS = flags.FLAGS


def _define_flags():
    # Only when run as a script: other benchmarks import this module's helpers.
    flags.DEFINE_integer("num_cores", 2, "CPU cores for tf.data (process affinity + thread pool).")
    flags.DEFINE_integer("batch_size", 16, "Batch size.")
    flags.DEFINE_integer("image_size", 227, "Output side S.")
    flags.DEFINE_integer("source_width", 320, "Width of the stored synthetic images.")
    flags.DEFINE_integer("source_height", 240, "Height of the stored synthetic images.")
    flags.DEFINE_integer("num_records", 64, "Synthetic records to write.")
    flags.DEFINE_integer("num_batches", 20, "Timed batches per measurement.")
    flags.DEFINE_integer("warmup_batches", 3, "Untimed batches first.")
    flags.DEFINE_float("cache_mb", 1024, "Decoded-record cache budget, MB (0: decode every time).")


def _sample(height: int, width: int, seed: int) -> dict:
    from mtsyn_tf import geometry

    rng = np.random.default_rng(seed)
    intrinsics = geometry.intrinsics_from_fov(width, height, 60.0)
    normal = np.array([0.2, -0.3, -1.0]) / np.linalg.norm([0.2, -0.3, -1.0])
    depth = (-3.0 / (geometry.pixel_rays(height, width, intrinsics) @ normal)).astype(np.float32)
    instance = (np.arange(width)[None, :] // 40 + 10 * (np.arange(height)[:, None] // 60)).astype(
        np.int32
    )
    return {
        "image": rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
        "depth": depth,
        "normals": np.broadcast_to(normal, (height, width, 3)).astype(np.float32),
        "instance": instance,
        "contour": geometry.contours_from_instances(instance),
        "valid": depth > 0,
        "intrinsics": intrinsics.astype(np.float32),
        "scene_id": "bench",
        "image_id": f"bench/{seed}",
        "source": "benchmark",
    }


def _rate(dataset, count_images, num_batches: int, warmup: int) -> tuple[float, float]:
    """Images/s and process CPU milliseconds per image."""
    import resource

    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    start, cpu_start = time.perf_counter(), cpu()
    images = 0
    for _ in range(num_batches):
        images += count_images(next(iterator))
    return images / (time.perf_counter() - start), 1000 * (cpu() - cpu_start) / images


def main(argv):
    del argv
    if hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, available[: FLAGS.num_cores])
    import tensorflow as tf

    from mtsyn_tf.data import pipeline, real_domain, writer

    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.num_cores)
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.num_cores)
    options = tf.data.Options()
    options.threading.private_threadpool_size = FLAGS.num_cores

    b, s = FLAGS.batch_size, FLAGS.image_size
    with tempfile.TemporaryDirectory() as tmp:
        samples = (
            _sample(FLAGS.source_height, FLAGS.source_width, i) for i in range(FLAGS.num_records)
        )
        writer.write_dataset(samples, tmp, "train", 4, "synthetic", "benchmark", grid_rows=0)
        synthetic = (
            pipeline.make_synthetic_training_dataset(tmp, s, cache_mb=FLAGS.cache_mb).batch(
                b, drop_remainder=True
            )
        ).with_options(options)
        real = (
            real_domain.make_real_dataset("embedded", s).batch(b, drop_remainder=True)
        ).with_options(options)
        both = pipeline.make_training_dataset(
            tmp, "embedded", b, s, cache_mb=FLAGS.cache_mb
        ).with_options(options)
        args = (FLAGS.num_batches, FLAGS.warmup_batches)
        rates = {
            "synthetic (decode+crop+flip+gray)": _rate(synthetic, lambda x: b, *args),
            "real embedded (crop+flip+jitter)": _rate(real, lambda x: b, *args),
            "training batches (synthetic+real)": _rate(both, lambda x: 2 * b, *args),
        }
    print(
        f"Input pipeline on {FLAGS.num_cores} cores, {FLAGS.source_width}x{FLAGS.source_height} "
        f"records -> {s}x{s}, batch {b}, decoded-record cache {FLAGS.cache_mb:.0f} MB:"
    )
    for name, (rate, cpu_ms) in rates.items():
        print(f"  {name:<36s} {rate:8.1f} images/s {cpu_ms:7.2f} CPU-ms/image")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
