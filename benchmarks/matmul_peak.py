"""Measured dense-matmul peak (GFLOP/s) of a device, float32 and bfloat16.

The reference against which ``train_step.py`` reports the fraction of peak a training
step achieves: a large square ``tf.matmul`` (2·n³ FLOPs) in a ``tf.function``, best of
``repeats`` timed runs after a warm-up.

    python benchmarks/matmul_peak.py --n=2048 --device=cpu
"""

from __future__ import annotations

import time

import tensorflow as tf
from absl import app, flags


def device_name(device: str) -> str:
    """ "cpu" / "gpu" → a TF device string; raises if a GPU is asked for and absent."""
    if device == "gpu":
        if not tf.config.list_logical_devices("GPU"):
            raise ValueError("--device=gpu but TensorFlow sees no GPU on this machine.")
        return "/GPU:0"
    if device != "cpu":
        raise ValueError(f"device must be 'cpu' or 'gpu'. Received: device={device!r}")
    return "/CPU:0"


def matmul_gflops(
    dtype: str = "float32", n: int = 2048, device: str = "cpu", repeats: int = 5, cpu=False
):
    """Best-of-``repeats`` GFLOP/s of an n×n by n×n matmul in ``dtype`` on ``device``.

    With ``cpu``: ``(GFLOP/s, GFLOP per CPU-second)``, the second from the process CPU time
    of each run (all threads), best of ``repeats``: the ceiling for a step measured in CPU
    time on a machine other jobs share, where wall time measures the load as much as us.
    """
    with tf.device(device_name(device)):
        a = tf.random.stateless_normal([n, n], seed=[1, 2], dtype=tf.float32)
        b = tf.random.stateless_normal([n, n], seed=[3, 4], dtype=tf.float32)
        a, b = tf.cast(a, dtype), tf.cast(b, dtype)

        @tf.function
        def product(x, y):
            return tf.reduce_sum(tf.cast(tf.matmul(x, y)[:1, :1], tf.float32))

        product(a, b).numpy()  # trace + warm up
        best, best_cpu = float("inf"), float("inf")
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            product(a, b).numpy()
            best = min(best, time.perf_counter() - start)
            best_cpu = min(best_cpu, time.process_time() - start_cpu)
    gflops = 2.0 * n**3 / best / 1e9
    return (gflops, 2.0 * n**3 / best_cpu / 1e9) if cpu else gflops


FLAGS = flags.FLAGS


def _define_flags():
    # Only when run as a script: train_step.py imports this module and has its own flags.
    flags.DEFINE_integer("n", 2048, "Matrix side.")
    flags.DEFINE_enum("device", "cpu", ["cpu", "gpu"], "Device to measure.")
    flags.DEFINE_integer("repeats", 5, "Timed runs (best is reported).")


def main(argv):
    del argv
    for dtype in ("float32", "bfloat16") + (("float16",) if FLAGS.device == "gpu" else ()):
        gflops = matmul_gflops(dtype, FLAGS.n, FLAGS.device, FLAGS.repeats)
        print(f"{FLAGS.device} {dtype:9s} n={FLAGS.n}: {gflops:8.1f} GFLOP/s")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
