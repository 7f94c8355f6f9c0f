"""mtsyn_tf's training step beside the PyTorch reference step, measured in turns.

Starts two worker processes — the mtsyn_tf step (this file with ``--worker``, in the
project's Python) and ``torch_reference_step.py --serve`` (in ``.venv-torch``, which
``make bench-torch`` creates) — builds the same paper_alexnet iteration in each at the same
batch and thread count, then times them in alternation, ``rounds`` times, so that both see
the same machine load. Only one worker computes at a time; the other waits on its stdin.

Printed: img/s and images per CPU-second (process CPU time of all its threads: the work
a step costs, which holds on a machine other jobs share) of each (median over rounds), the ratio mtsyn_tf / PyTorch (median of the
per-round ratios), and each one's share of the FLOP ceiling: the best dense-matmul rate
(``matmul_peak.py``, fp32) measured between rounds, against the step's FLOPs per image
counted by TensorFlow's profiler (``train_step.flops_and_memory``).

    python benchmarks/compare_train_step.py --batch=8 --rounds=5
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app, flags

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", "paper_alexnet", "mtsyn_tf preset (the torch step is paper_alexnet).")
flags.DEFINE_integer("batch", 8, "Images per domain per step, both frameworks.")
flags.DEFINE_integer("threads", 2, "Intra-op threads, both frameworks.")
flags.DEFINE_integer("rounds", 5, "Alternations (each: mtsyn_tf, then PyTorch, then matmul).")
flags.DEFINE_integer("steps", 3, "Timed steps per framework per round.")
flags.DEFINE_integer("warmup", 2, "Untimed steps when a worker starts.")
flags.DEFINE_string(
    "torch_python",
    os.path.join(ROOT, ".venv-torch", "bin", "python"),
    "Python of the virtualenv with torch (make bench-torch creates it).",
)
flags.DEFINE_bool(
    "tf_thread_plan",
    True,
    "mtsyn_tf's thread plan (mtsyn_tf.runtime); false: TensorFlow's default pools (the 'before').",
)
flags.DEFINE_list(
    "tf_variants",
    ["keras"],
    "mtsyn_tf model variants to time, each in its own worker (benchmarks/model_variants.py).",
)
flags.DEFINE_string("json_out", None, "Also write the result as JSON here (make bench's table).")
flags.DEFINE_string("variant", "keras", "Internal: the worker's model variant.")
flags.DEFINE_bool("count_flops", True, "Internal: whether the worker counts the step's FLOPs.")
flags.DEFINE_enum("worker", None, ["tf"], "Internal: run as the mtsyn_tf worker.")


# ---------------------------------------------------------------------- the mtsyn_tf worker
def _tf_worker():
    from mtsyn_tf import runtime

    if FLAGS.tf_thread_plan:
        runtime.configure_threads(FLAGS.threads)
    import model_variants
    import tensorflow as tf
    from matmul_peak import matmul_gflops
    from train_step import _build, _random_batch, _time, flops_and_memory

    # The run's trainer: D with the reference's SGD (SPEC §3), as in the torch step.
    trainer = _build(FLAGS.preset, FLAGS.batch, "float32")
    flops = None
    if FLAGS.count_flops:
        # FLOPs of the work the step must do, with the library's fc6/fc7 as matmuls (exact
        # 2·M·K·N); the conv path through space_to_batch would count 16 % more for fc6.
        flops = flops_and_memory(trainer, 1)["train_flops_per_image"]
    model_variants.apply(trainer.model, FLAGS.variant)
    data = _random_batch(FLAGS.batch, trainer.model.image_size)
    step = tf.function(trainer.train_step)
    _time(lambda: step(data), 1, FLAGS.warmup - 1)  # tracing, first-run allocations
    print(json.dumps({"ready": True, "flops_per_image": flops, **runtime.describe()}), flush=True)
    for line in sys.stdin:
        command = line.split()
        if command == ["quit"]:
            break
        if command[0] == "time":
            cpu = time.process_time()
            seconds = _time(lambda: step(data), int(command[1]), 0)
            reply = {
                "seconds_per_step": seconds,
                "cpu_seconds_per_step": (time.process_time() - cpu) / int(command[1]),
            }
        elif command[0] == "peak":
            gflops, per_cpu_s = matmul_gflops("float32", 2048, "cpu", repeats=3, cpu=True)
            reply = {"gflops": gflops, "gflops_per_cpu_s": per_cpu_s}
        else:
            reply = {"error": f"expected 'time N', 'peak' or 'quit'. Received: {line!r}"}
        print(json.dumps(reply), flush=True)


# ---------------------------------------------------------------------- the driver
class Worker:
    """A child process answering one JSON line per command line."""

    def __init__(self, name: str, argv: list[str], env: dict):
        self.name = name
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env
        )
        self.hello = None

    def wait_ready(self):
        self.hello = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.log.seek(0)
            tail = self.log.read()[-3000:]
            raise RuntimeError(f"The {self.name} worker exited early. Its log ends:\n{tail}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.name} worker: {reply['error']}")
        return reply

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()  # a worker that does not exit must not cost the report


def torch_available(python: str) -> bool:
    return os.path.exists(python)


def compare(batch: int, threads: int, rounds: int, steps: int) -> dict:
    """Runs the workers in turns; returns medians, ratios to PyTorch and ceiling shares."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    common = [f"--batch={batch}", f"--threads={threads}", f"--warmup={FLAGS.warmup}"]
    workers = {}
    try:
        for variant in FLAGS.tf_variants:
            argv = [sys.executable, os.path.abspath(__file__), "--worker=tf"]
            argv += [f"--preset={FLAGS.preset}", f"--variant={variant}"] + common
            argv += [f"--tf_thread_plan={FLAGS.tf_thread_plan}", f"--count_flops={not workers}"]
            workers[f"mtsyn_tf[{variant}]"] = Worker(f"mtsyn_tf[{variant}]", argv, env)
        if torch_available(FLAGS.torch_python):
            argv = [FLAGS.torch_python, os.path.join(HERE, "torch_reference_step.py"), "--serve"]
            workers["PyTorch"] = Worker(
                "PyTorch", argv + common, {**env, "OMP_NUM_THREADS": str(threads)}
            )
        for worker in workers.values():  # all build at once; then they take turns
            worker.wait_ready()
        tf_names = [n for n in workers if n != "PyTorch"]
        rates = {n: [] for n in workers}
        cpu_rates = {n: [] for n in workers}  # images per CPU-second (all threads)
        ratios = {n: [] for n in tf_names}
        cpu_ratios = {n: [] for n in tf_names}
        peaks, cpu_peaks = [], []
        for r in range(rounds):
            for name, worker in workers.items():
                reply = worker.ask(f"time {steps}")
                rates[name].append(batch / reply["seconds_per_step"])
                cpu_rates[name].append(batch / reply["cpu_seconds_per_step"])
            peak = workers[tf_names[0]].ask("peak")
            peaks.append(peak["gflops"])
            cpu_peaks.append(peak["gflops_per_cpu_s"])
            for name in tf_names:
                if "PyTorch" in rates:
                    ratios[name].append(rates[name][-1] / rates["PyTorch"][-1])
                    cpu_ratios[name].append(cpu_rates[name][-1] / cpu_rates["PyTorch"][-1])
            line = ", ".join(f"{n} {v[-1]:.3f} img/s" for n, v in rates.items())
            print(f"  round {r + 1}: {line}; matmul {peaks[-1]:.1f} GFLOP/s", flush=True)
    finally:
        for worker in workers.values():
            worker.close()
    hello = workers[tf_names[0]].hello
    gflop = hello["flops_per_image"] / 1e9
    ceiling = max(peaks)
    cpu_ceiling = max(cpu_peaks)
    rows = {}
    for name, values in rates.items():
        rate = statistics.median(values)
        rows[name] = {
            "images_per_s": rate,
            "ceiling_fraction": rate * gflop / ceiling,
            "ratio_to_torch": statistics.median(ratios[name]) if ratios.get(name) else None,
            "images_per_cpu_s": statistics.median(cpu_rates[name]),
            "cpu_ceiling_fraction": statistics.median(cpu_rates[name]) * gflop / cpu_ceiling,
            "cpu_ratio_to_torch": (
                statistics.median(cpu_ratios[name]) if cpu_ratios.get(name) else None
            ),
        }
    return {
        "rows": rows,
        "gflop_per_image": gflop,
        "ceiling_gflops": ceiling,
        "ceiling_gflops_per_cpu_s": cpu_ceiling,
        "load_average": os.getloadavg(),
        "tf_runtime": {k: v for k, v in hello.items() if k not in ("ready", "flops_per_image")},
        "torch_version": workers["PyTorch"].hello.get("torch") if "PyTorch" in workers else None,
    }


def print_report(r: dict, batch: int, threads: int) -> None:
    rt = r["tf_runtime"]
    print(
        f"train step, paper_alexnet, batch {batch}, {threads} threads; mtsyn_tf oneDNN="
        f"{'on' if rt['onednn'] else 'off'}, inter-op threads {rt['inter_op_threads'] or 'TF default'}; "
        f"torch {r['torch_version'] or 'absent'}; {r['gflop_per_image']:.1f} GFLOP/img; "
        f"ceiling (best fp32 matmul) {r['ceiling_gflops']:.1f} GFLOP/s, "
        f"{r['ceiling_gflops_per_cpu_s']:.1f} GFLOP/CPU-s; load average "
        + "/".join(f"{x:.1f}" for x in r["load_average"])
    )
    print(
        f"  {'':22s} {'img/s':>7s} {'% ceiling':>9s} {'vs PyTorch':>10s} "
        f"{'img/CPU-s':>9s} {'vs PyTorch (CPU)':>16s} {'% ceiling (CPU)':>15s}"
    )
    for name, row in r["rows"].items():
        ratio, cpu_ratio = row["ratio_to_torch"], row["cpu_ratio_to_torch"]
        ratio = "-" if ratio is None else f"{ratio:.2f}x"
        cpu_ratio = "-" if cpu_ratio is None else f"{cpu_ratio:.2f}x"
        print(
            f"  {name:22s} {row['images_per_s']:7.3f} {100 * row['ceiling_fraction']:8.1f}% "
            f"{ratio:>10s} {row['images_per_cpu_s']:9.3f} {cpu_ratio:>16s} "
            f"{100 * row['cpu_ceiling_fraction']:14.1f}%"
        )
    print(
        "  img/CPU-s: images per CPU-second of the worker (all threads); on a machine shared "
        "with other jobs it measures the work a step costs, which wall time does not."
    )
    if r["torch_version"] is None:
        print(
            f"  PyTorch comparison off: no {FLAGS.torch_python}. `make bench-torch` creates it "
            "(torch 2.13.0 CPU in its own virtualenv) and runs this comparison."
        )
    print("  targets: >= 1.15x PyTorch, >= 85 % of the ceiling")


def main(argv):
    del argv
    if FLAGS.worker == "tf":
        _tf_worker()
        return
    for name in ("batch", "threads", "rounds", "steps", "warmup"):
        if getattr(FLAGS, name) <= 0:
            raise app.UsageError(f"--{name} must be > 0. Received: {getattr(FLAGS, name)}")
    result = compare(FLAGS.batch, FLAGS.threads, FLAGS.rounds, FLAGS.steps)
    print_report(result, FLAGS.batch, FLAGS.threads)
    if FLAGS.json_out:
        from mtsyn_tf.io_utils import write_json_atomic

        write_json_atomic(
            FLAGS.json_out, {"batch": FLAGS.batch, "threads": FLAGS.threads, **result}
        )


if __name__ == "__main__":
    app.run(main)
