"""Training inside the run driver vs the isolated train step vs the input pipeline alone.

The demo's setting (``mtsyn_tf.demo.run.DemoConfig``: preset ``small``, batch 16, 227²,
synthetic shards + the embedded real photos as real shards, the demo's callbacks), on a
demo-shaped data set written to a temporary directory (192 records of 227², or
``--synthetic_dir`` / ``--real_source`` to time real data such as the demo's workspace).

All three are timed in one process, in turns, because other work on a shared machine
makes separate runs incomparable. One ``loop.train`` run trains; every
``--driver_steps`` steps a callback pauses it and times, on the same trainer:

1. the driver: ``loop.train``'s epoch loop (``strategy.run`` in a ``tf.function``, the
   real tf.data pipeline decoding and augmenting the next batch meanwhile, the run's
   callbacks), the steps of the round after ``--drain_steps`` untimed ones (the batches
   prefetched during the pause are used up first);
2. the isolated step: ``tf.function(trainer.train_step)`` on one batch already in memory;
3. the input pipeline alone (``make_training_dataset`` with the run's options).

Per phase: images/s (synthetic images, B per step), process CPU seconds per step and
involuntary context switches per step (threads preempting each other: oversubscription).
Printed: the median over rounds of driver ÷ isolated (target ≥ 0.90), the same by CPU
seconds per step (isolated ÷ driver: what the driver reaches when it has the cores to
itself, so it holds on a loaded machine where wall ratios swing) and input ÷ driver
(target ≥ 3), with the load average. Process settings are the library's
(``mtsyn_tf.runtime``).

    python benchmarks/fit_vs_step.py [--rounds=5] [--cache_mb=0]
"""

from __future__ import annotations

import dataclasses
import os
import resource
import statistics
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

FLAGS = flags.FLAGS
flags.DEFINE_integer("rounds", 4, "Turns of driver / isolated step / input pipeline.")
flags.DEFINE_integer("driver_steps", 8, "Timed driver steps per round.")
flags.DEFINE_integer("drain_steps", 3, "Untimed driver steps at the start of each round.")
flags.DEFINE_integer("warmup", 3, "Untimed driver steps first (tracing).")
flags.DEFINE_integer("isolated_steps", 4, "Timed isolated steps per round (after 1 untimed).")
flags.DEFINE_integer("pipeline_batches", 8, "Timed input batches per round (after 1 untimed).")
flags.DEFINE_integer("num_records", 192, "Synthetic records written (the demo renders 192).")
flags.DEFINE_integer("image_side", 227, "Side of the written synthetic records (the demo's).")
flags.DEFINE_string("synthetic_dir", None, "Time these synthetic shards instead.")
flags.DEFINE_string("real_source", None, "Real domain (default: embedded photos as shards).")
flags.DEFINE_float("cache_mb", None, "Decoded-record cache budget (default: the run's).")
flags.DEFINE_string("json_out", None, "Also write the result as JSON here (make bench's table).")


def _usage() -> tuple[float, float, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime + r.ru_stime, r.ru_nivcsw


def _phase(start, end, steps: int, images_per_step: int) -> dict:
    wall, cpu, preempted = (e - s for s, e in zip(start, end))
    return {
        "images_per_s": steps * images_per_step / wall,
        "cpu_s_per_step": cpu / steps,
        "preemptions_per_step": preempted / steps,
    }


def _write_data(directory: str, records: int, side: int) -> tuple[str, str]:
    from input_pipeline import _sample

    from mtsyn_tf.data import real_domain, writer

    synthetic = os.path.join(directory, "synthetic")
    samples = (_sample(side, side, i) for i in range(records))
    writer.write_dataset(samples, synthetic, "train", 1, "synthetic", "benchmark", grid_rows=0)
    real = os.path.join(directory, "real")
    real_domain.write_real_shards(real_domain.EMBEDDED, real, overwrite=True)
    return synthetic, real


def driver_vs_step(tmp: str) -> dict:
    import keras
    import tensorflow as tf

    from mtsyn_tf import runtime
    from mtsyn_tf.data import pipeline
    from mtsyn_tf.demo.run import DemoConfig, _run_config
    from mtsyn_tf.progress import training_callback
    from mtsyn_tf.trainer import loop

    if FLAGS.synthetic_dir:
        synthetic, real = FLAGS.synthetic_dir, FLAGS.real_source or "embedded"
    else:
        synthetic, real = _write_data(tmp, FLAGS.num_records, FLAGS.image_side)
        real = FLAGS.real_source or real
    demo = DemoConfig(workspace=tmp)
    per_round = FLAGS.drain_steps + FLAGS.driver_steps
    overrides = {
        "workdir": os.path.join(tmp, "run"),
        "synthetic_dir": synthetic,
        "real_source": real,
        "epochs": 1,
        "steps_per_epoch": FLAGS.warmup + FLAGS.rounds * per_round,
    }
    if FLAGS.cache_mb is not None:
        overrides["data_cache_mb"] = FLAGS.cache_mb
    cfg = dataclasses.replace(_run_config(demo), **overrides)
    batch = cfg.batch_size

    class Turns(keras.callbacks.Callback):
        """Times the driver's steps; at each round's end, the isolated step and the input."""

        def __init__(self):
            super().__init__()
            self.rounds, self.marks = [], {}
            self.step = self.batch = self.inputs = None

        def on_train_batch_end(self, index, logs=None):
            done = index + 1 - FLAGS.warmup  # steps since the warm-up
            if done < 0:
                return
            if done % per_round == FLAGS.drain_steps:
                self.marks["driver"] = _usage()
            if done % per_round == 0 and done > 0:
                driver = _phase(self.marks["driver"], _usage(), FLAGS.driver_steps, batch)
                self.rounds.append({"driver": driver, **self._pause()})

        def _pause(self) -> dict:
            if self.step is None:  # first pause: trace the step, build the input stream
                self.step = tf.function(self.model.train_step)
                ds = pipeline.make_training_dataset(
                    cfg.synthetic_dir,
                    cfg.real_source,
                    batch,
                    self.model.model.image_size,
                    grayscale=False,
                    seed=cfg.seed,
                    deterministic=cfg.deterministic,
                    **loop.pipeline_options(cfg),
                )
                self.inputs = ds
                self.batch = tf.nest.map_structure(tf.identity, next(iter(ds)))
            out = {}
            self._run(self.step, self.batch)  # untimed: tracing, prefetch refills
            start = _usage()
            for _ in range(FLAGS.isolated_steps):
                self._run(self.step, self.batch)
            out["isolated"] = _phase(start, _usage(), FLAGS.isolated_steps, batch)
            # A fresh iterator each round: one kept between rounds would fill its prefetch
            # buffers meanwhile and hand them out for free. (The cache is the dataset's,
            # built once.)
            inputs = iter(self.inputs)
            next(inputs)
            start = _usage()
            for _ in range(FLAGS.pipeline_batches):
                next(inputs)
            out["pipeline"] = _phase(start, _usage(), FLAGS.pipeline_batches, batch)
            del inputs
            return out

        @staticmethod
        def _run(step, data):
            tf.nest.map_structure(lambda t: t.numpy(), step(data))

    turns = Turns()
    load_before = os.getloadavg()
    progress = training_callback(cfg.epochs * cfg.steps_per_epoch, 2 * batch)
    loop.train(cfg, extra_callbacks=[progress, turns])
    load_after = os.getloadavg()

    def median(phase, key):
        return statistics.median(r[phase][key] for r in turns.rounds)

    result = {
        "preset": cfg.preset,
        "batch": batch,
        "rounds": turns.rounds,
        "load_average_1min": [load_before[0], load_after[0]],
        "data_cache_mb": cfg.data_cache_mb,
        "runtime": runtime.describe(),
        "driver_over_step": statistics.median(
            r["driver"]["images_per_s"] / r["isolated"]["images_per_s"] for r in turns.rounds
        ),
        # What the driver would reach with both cores busy for it (no other load): the
        # step's CPU over the driver's, input work included. Robust to a loaded machine.
        "driver_over_step_cpu": statistics.median(
            r["isolated"]["cpu_s_per_step"] / r["driver"]["cpu_s_per_step"] for r in turns.rounds
        ),
        "pipeline_over_training": statistics.median(
            r["pipeline"]["images_per_s"] / r["driver"]["images_per_s"] for r in turns.rounds
        ),
    }
    for phase in ("driver", "isolated", "pipeline"):
        for key in ("images_per_s", "cpu_s_per_step", "preemptions_per_step"):
            result[f"{phase}_{key}"] = median(phase, key)
    # The names make bench's table has read since the driver replaced Keras fit.
    result["fit_images_per_s"] = result["driver_images_per_s"]
    result["step_images_per_s"] = result["isolated_images_per_s"]
    result["fit_over_step"] = result["driver_over_step"]
    return result


def print_report(r: dict) -> None:
    rt = r["runtime"]
    print(
        f"\nrun driver vs isolated step, {r['preset']}, batch {r['batch']}, demo setting; "
        f"oneDNN {'on' if rt['onednn'] else 'off'}, intra/inter-op threads "
        f"{rt['intra_op_threads']}/{rt['inter_op_threads']}, {rt['cores']} cores, "
        f"decoded-record cache {r['data_cache_mb']:.0f} MB; load average "
        f"{r['load_average_1min'][0]:.1f} -> {r['load_average_1min'][1]:.1f}"
    )
    print(f"{'round':<7s}" + "".join(f"{p:>36s}" for p in ("driver", "isolated step", "input")))
    print(f"{'':<7s}" + "      img/s  CPU-s/step  preempt/step" * 3)
    for i, rnd in enumerate(r["rounds"]):
        cells = "".join(
            f"  {rnd[p]['images_per_s']:9.2f}  {rnd[p]['cpu_s_per_step']:10.3f}  "
            f"{rnd[p]['preemptions_per_step']:12.1f}"
            for p in ("driver", "isolated", "pipeline")
        )
        print(f"{i + 1:<7d}{cells}")
    print(
        f"median: driver {r['driver_images_per_s']:.2f} img/s, isolated step "
        f"{r['isolated_images_per_s']:.2f} img/s -> ratio driver/step "
        f"{r['driver_over_step']:.2f} (target >= 0.90)"
    )
    print(
        f"median: CPU-s per step: driver {r['driver_cpu_s_per_step']:.3f}, isolated step "
        f"{r['isolated_cpu_s_per_step']:.3f} -> by CPU time {r['driver_over_step_cpu']:.2f}"
    )
    print(
        f"median: input pipeline {r['pipeline_images_per_s']:.1f} img/s "
        f"({r['pipeline_cpu_s_per_step'] * 1000:.0f} CPU-ms per batch of {r['batch']} pairs) "
        f"-> ratio input/training {r['pipeline_over_training']:.1f} (target >= 3)"
    )


def main(argv):
    del argv
    from mtsyn_tf import runtime

    runtime.configure_threads()
    if min(FLAGS.rounds, FLAGS.driver_steps, FLAGS.isolated_steps, FLAGS.pipeline_batches) < 1:
        raise app.UsageError(
            "--rounds, --driver_steps, --isolated_steps and --pipeline_batches must be >= 1."
        )
    with tempfile.TemporaryDirectory(prefix="mtsyn_fit_vs_step_") as tmp:
        r = driver_vs_step(tmp)
    print_report(r)
    if FLAGS.json_out:
        from mtsyn_tf.io_utils import write_json_atomic

        write_json_atomic(FLAGS.json_out, r)


if __name__ == "__main__":
    app.run(main)
