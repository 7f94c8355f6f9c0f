"""Training inside ``trainer.loop.train`` (the run driver's epoch loop on the real input
pipeline) vs the isolated step, and the input pipeline alone, all in one process.

Writes a small 320×240 synthetic dataset, then, in turns:

1. the isolated step: ``train_step`` of the run's trainer on one fixed batch already in
   memory (no input pipeline);
2. ``fit``: ``loop.train`` for ``steps`` steps, timed per batch by a callback from step
   ``warmup`` on (tracing excluded), with tf.data decoding and augmenting the next batch
   while the step runs;
3. the isolated step again (the mean of 1 and 3 is the reference: the machine's load
   drifts);
4. the input pipeline alone (``make_training_dataset``, same options), images/s.

Printed: fit img/s ÷ isolated-step img/s (target ≥ 0.9) and input ÷ training img/s
(target ≥ 3). Process settings are the library's (``mtsyn_tf.runtime``).

    python benchmarks/fit_vs_step.py --preset=small --batch=16
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", "small", "Model preset.")
flags.DEFINE_integer("batch", 16, "Batch per domain.")
flags.DEFINE_integer("steps", 14, "Steps of the fit run.")
flags.DEFINE_integer("warmup", 4, "Untimed steps first (tracing), fit and isolated step.")
flags.DEFINE_integer("isolated_steps", 6, "Timed isolated steps, before and after fit.")
flags.DEFINE_integer("num_records", 32, "Synthetic records written.")
flags.DEFINE_bool("deterministic", True, "As the demo and scripts/train.py default.")
flags.DEFINE_string("json_out", None, "Also write the result as JSON here (make bench's table).")
flags.DEFINE_bool(
    "thread_plan", True, "mtsyn_tf.runtime's thread pools; false: TensorFlow's defaults."
)


def _write_dataset(directory: str, n: int) -> str:
    from input_pipeline import _sample

    from mtsyn_tf.data import writer

    samples = (_sample(240, 320, i) for i in range(n))
    writer.write_dataset(samples, directory, "train", 4, "synthetic", "benchmark", grid_rows=0)
    return directory


def _isolated_rate(trainer, batch, steps: int, warmup: int) -> float:
    import tensorflow as tf

    step = tf.function(trainer.train_step)
    for _ in range(warmup):
        tf.nest.map_structure(lambda t: t.numpy(), step(batch))
    start = time.perf_counter()
    for _ in range(steps):
        tf.nest.map_structure(lambda t: t.numpy(), step(batch))
    images = tf.nest.flatten(batch)[0].shape[0]
    return steps * images / (time.perf_counter() - start)


def fit_vs_step(preset: str, batch_size: int, steps: int, warmup: int, isolated: int) -> dict:
    import keras
    import tensorflow as tf

    from mtsyn_tf import runtime
    from mtsyn_tf.data import pipeline
    from mtsyn_tf.trainer import loop

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = _write_dataset(os.path.join(tmp, "data"), FLAGS.num_records)
        cfg = loop.RunConfig(
            workdir=os.path.join(tmp, "run"),
            synthetic_dir=data_dir,
            preset=preset,
            batch_size=batch_size,
            epochs=1,
            steps_per_epoch=steps,
            deterministic=FLAGS.deterministic,
            image_summaries=False,
            verbose=0,
        )
        clock = Clock()
        # The fit run first builds the trainer whose step is then timed in isolation.
        loop.train(cfg, extra_callbacks=[clock])
        trainer = clock.model
        dataset = pipeline.make_training_dataset(
            data_dir,
            "embedded",
            batch_size,
            trainer.model.image_size,
            grayscale=False,
            seed=0,
            deterministic=FLAGS.deterministic,
        )
        batch = tf.nest.map_structure(tf.identity, next(iter(dataset)))
        timed = clock.ends[warmup - 1 :]
        fit_rate = (len(timed) - 1) * batch_size / (timed[-1] - timed[0])
        before = _isolated_rate(trainer, batch, isolated, 2)
        # A second fit (resumes nothing: a fresh workdir) with the clock, between the two
        # isolated measurements.
        cfg.workdir = os.path.join(tmp, "run2")
        clock2 = Clock()
        loop.train(cfg, extra_callbacks=[clock2])
        timed2 = clock2.ends[warmup - 1 :]
        fit_rate2 = (len(timed2) - 1) * batch_size / (timed2[-1] - timed2[0])
        after = _isolated_rate(trainer, batch, isolated, 1)
        iterator = iter(dataset)
        for _ in range(2):
            next(iterator)
        start = time.perf_counter()
        for _ in range(8):
            next(iterator)
        pipe_rate = 8 * batch_size / (time.perf_counter() - start)
    step_rate = (before + after) / 2
    fit = (fit_rate + fit_rate2) / 2
    return {
        "fit_images_per_s": fit,
        "step_images_per_s": step_rate,
        "fit_over_step": fit / step_rate,
        "pipeline_images_per_s": pipe_rate,
        "pipeline_over_training": pipe_rate / fit,
        "runtime": runtime.describe(),
    }


def print_report(r: dict, preset: str, batch: int) -> None:
    rt = r["runtime"]
    print(
        f"fit vs isolated step, {preset}, batch {batch}; oneDNN {'on' if rt['onednn'] else 'off'}, "
        f"intra/inter-op threads {rt['intra_op_threads']}/{rt['inter_op_threads']}, "
        f"{rt['cores']} cores"
    )
    print(f"  isolated step   {r['step_images_per_s']:7.2f} img/s")
    print(
        f"  inside fit      {r['fit_images_per_s']:7.2f} img/s   "
        f"ratio fit/step {r['fit_over_step']:.2f} (target >= 0.90)"
    )
    print(
        f"  input pipeline  {r['pipeline_images_per_s']:7.2f} img/s   "
        f"ratio input/training {r['pipeline_over_training']:.1f} (target >= 3)"
    )


def main(argv):
    del argv
    from mtsyn_tf import runtime

    if FLAGS.thread_plan:
        runtime.configure_threads()
    if FLAGS.steps <= FLAGS.warmup + 1:
        raise app.UsageError(
            f"--steps must exceed --warmup + 1. Received: steps={FLAGS.steps}, warmup={FLAGS.warmup}"
        )
    r = fit_vs_step(FLAGS.preset, FLAGS.batch, FLAGS.steps, FLAGS.warmup, FLAGS.isolated_steps)
    print_report(r, FLAGS.preset, FLAGS.batch)
    if FLAGS.json_out:
        from mtsyn_tf.io_utils import write_json_atomic

        write_json_atomic(FLAGS.json_out, {"preset": FLAGS.preset, "batch": FLAGS.batch, **r})


if __name__ == "__main__":
    app.run(main)
