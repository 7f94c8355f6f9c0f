"""How long deleting the training stream's iterator takes, with tf.data autotuning on and off.

At the end of a run the epoch loop deletes the iterator of ``make_training_dataset``
(``mtsyn_tf.trainer.epoch_loop``). With autotuning on, TF 2.21 sometimes waits for
autotune's optimisation thread to finish a sleep of up to 60 s (``runtime.dataset_options``
says why); a demo lost 12-59 s there. The library turns autotuning off for this stream.

Each trial is a process that reads the training stream (a demo-shaped data set: 227²
synthetic records, the embedded photos as real shards, batch 16) at the demo's pace
(``--pace_s`` between batches) for ``--seconds`` (+3 s per trial) — long enough for
autotune's period to reach its 60 s maximum (~82 s) — then deletes the iterator and
reports how long that took. The trials of one setting run side by side, the two
settings one after the other (~4 min in all).

    python benchmarks/close_training_stream.py [--trials=8] [--seconds=88]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

FLAGS = flags.FLAGS
flags.DEFINE_integer("trials", 8, "Processes per setting, run side by side.")
flags.DEFINE_float("seconds", 88.0, "Reading time of the first trial (> ~82 s); +3 s per trial.")
flags.DEFINE_float("pace_s", 0.3, "Pause between batches (the demo's step time).")
flags.DEFINE_integer("synthetic_records", 48, "Synthetic records written for the trials.")
flags.DEFINE_enum("worker", None, ["library", "autotune"], "Internal: runs one trial.")
flags.DEFINE_string("data_dir", None, "Internal: the trials' data set.")
flags.DEFINE_float("stall_s", 1.0, "A close slower than this counts as a stall.")

SETTINGS = {
    "library": "the library's options (autotune off)",
    "autotune": "the same with tf.data autotuning on",
}


def _trial() -> None:
    import tensorflow as tf

    from mtsyn_tf.data import pipeline

    ds = pipeline.make_training_dataset(
        os.path.join(FLAGS.data_dir, "synthetic"),
        os.path.join(FLAGS.data_dir, "real"),
        batch_size=16,
        image_size=227,
        min_edge_pixels=350,  # the run's default (TrainerConfig.min_edge_pixels)
    )
    if FLAGS.worker == "autotune":
        options = tf.data.Options()
        options.autotune.enabled = True
        ds = ds.with_options(options)
    iterator, start, batches = iter(ds), time.time(), 0
    while time.time() - start < FLAGS.seconds:
        next(iterator)
        batches += 1
        time.sleep(FLAGS.pace_s)
    closing = time.perf_counter()
    del iterator
    print(f"CLOSE {time.perf_counter() - closing:.4f} {batches}", flush=True)


def _run_setting(setting: str, data_dir: str) -> list[float]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, os.path.abspath(__file__), f"--worker={setting}"]
    command += [f"--data_dir={data_dir}", f"--pace_s={FLAGS.pace_s}"]
    # Trial i reads 3·i s longer: the closes fall at different points of autotune's sleep.
    procs = [
        subprocess.Popen(
            [*command, f"--seconds={FLAGS.seconds + 3 * i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(FLAGS.trials)
    ]
    closes = []
    for proc in procs:
        out, err = proc.communicate()
        lines = [line for line in out.splitlines() if line.startswith("CLOSE ")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"A {setting} trial failed (exit {proc.returncode}):\n{err[-2000:]}")
        closes.append(float(lines[-1].split()[1]))
    return closes


def main(argv):
    del argv
    if FLAGS.worker:
        return _trial()
    if FLAGS.seconds < 85:
        print(f"note: --seconds={FLAGS.seconds} < 85: autotune's period may not reach 60 s yet")
    from fit_vs_step import _write_data

    with tempfile.TemporaryDirectory(prefix="mtsyn_close_") as tmp:
        _write_data(tmp, FLAGS.synthetic_records, 227)
        results = {s: _run_setting(s, tmp) for s in SETTINGS}
    print(
        f"\nclosing the training stream after {FLAGS.seconds:.0f}-"
        f"{FLAGS.seconds + 3 * (FLAGS.trials - 1):.0f} s at {FLAGS.pace_s} s/batch, "
        f"{FLAGS.trials} trials per setting"
    )
    print(f"{'setting':<10} {'median s':>9} {'max s':>8} {'stalls':>7}  closes (s)")
    for setting, closes in results.items():
        stalls = sum(c > FLAGS.stall_s for c in closes)
        print(
            f"{setting:<10} {statistics.median(closes):>9.3f} {max(closes):>8.2f} "
            f"{stalls:>4}/{len(closes):<2}  {' '.join(f'{c:.3f}' for c in closes)}  "
            f"({SETTINGS[setting]})"
        )


if __name__ == "__main__":
    app.run(main)
