"""``make bench``: every speed figure of issue 13 in one run, then one table at the end.

Runs each benchmark in its own process (TensorFlow and DrJit must not share one; each
sizes its own thread pools), shows its output as it goes, and collects its figures:

* fresh-scene render rate (``render_throughput.py``; its "cold" row), target ≥ 4 img/s;
* the paper_alexnet train step beside the PyTorch reference step, taken in turns
  (``compare_train_step.py``; PyTorch only if ``.venv-torch`` exists — ``make
  bench-torch``), targets ≥ 1.15× PyTorch and ≥ 85 % of the FLOP ceiling;
* training inside the run driver vs the isolated step (wall and CPU time) and the input
  pipeline vs training, timed in turns in the demo's setting (``fit_vs_step.py``),
  targets ≥ 0.90 and ≥ 3;
* then ``train_step.py`` (FLOPs, memory, both presets) and ``export_latency.py`` as they
  print.

    python benchmarks/bench_all.py [--skip=render,export] [--json_out=bench.json]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile

from absl import app, flags

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

FLAGS = flags.FLAGS
_PARTS = ("render", "compare", "fit", "train_step", "export")
flags.DEFINE_list("skip", [], f"Parts to leave out, of {_PARTS}.")
flags.DEFINE_integer("rounds", 3, "Alternations of the mtsyn_tf / PyTorch comparison.")
flags.DEFINE_string("json_out", None, "Also write the table's rows as JSON here.")


def _run(script: str, *args: str) -> str:
    """Runs ``benchmarks/<script>`` with this Python, echoing and returning its stdout."""
    argv = [sys.executable, os.path.join(HERE, script), *args]
    print(f"\n$ {' '.join(os.path.relpath(a, ROOT) if a.startswith(ROOT) else a for a in argv)}")
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    lines = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    if proc.wait() != 0:
        raise RuntimeError(f"benchmarks/{script} exited with status {proc.returncode}.")
    return "".join(lines)


def _row(figure, value, unit, comparison, ratio, target) -> dict:
    return {
        "figure": figure,
        "value": value,
        "unit": unit,
        "comparison": comparison,
        "ratio": ratio,
        "target": target,
    }


def render_rows(output: str) -> list[dict]:
    match = re.search(r"^cold \(fresh machine\)\s+([0-9.]+)", output, re.MULTILINE)
    if match is None:  # its format changed: the figure is in the output above
        return [_row("render, fresh scenes", None, "img/s", "see output above", None, ">= 4")]
    rate = float(match.group(1))
    return [_row("render, fresh scenes (cold cache)", rate, "img/s", "target 4", rate / 4, ">= 1")]


def compare_rows(result: dict) -> list[dict]:
    rows = []
    torch = result["rows"].get("PyTorch")
    for name, r in result["rows"].items():
        if name == "PyTorch":
            continue
        label = {
            "mtsyn_tf[keras]": "train step, mtsyn_tf",
            "mtsyn_tf[fc6_dense]": "train step, fc6 multiplying its padding rows (before)",
            "mtsyn_tf[fc_conv]": "train step, fc6/fc7 as Conv2D (before)",
        }.get(name, f"train step, {name}")
        rows.append(
            _row(
                label,
                r["images_per_s"],
                "img/s",
                f"PyTorch {torch['images_per_s']:.3f}" if torch else "PyTorch absent",
                r["ratio_to_torch"],
                ">= 1.15",
            )
        )
        rows.append(
            _row(
                "  per CPU-second (all threads)",
                r["images_per_cpu_s"],
                "img/CPU-s",
                f"PyTorch {torch['images_per_cpu_s']:.3f}" if torch else "PyTorch absent",
                r["cpu_ratio_to_torch"],
                ">= 1.15",
            )
        )
        rows.append(
            _row(
                f"  share of FLOP ceiling ({result['ceiling_gflops']:.0f} GFLOP/s)",
                r["images_per_s"] * result["gflop_per_image"],
                "GFLOP/s",
                f"ceiling {result['ceiling_gflops']:.1f}",
                r["ceiling_fraction"],
                ">= 0.85",
            )
        )
        if "cpu_ceiling_fraction" in r:  # the same per CPU-second (machine shared with others)
            rows.append(
                _row(
                    "  share of FLOP ceiling per CPU-second",
                    r["images_per_cpu_s"] * result["gflop_per_image"],
                    "GFLOP/CPU-s",
                    f"ceiling {result['ceiling_gflops_per_cpu_s']:.1f}",
                    r["cpu_ceiling_fraction"],
                    ">= 0.85",
                )
            )
    return rows


def fit_rows(result: dict) -> list[dict]:
    label = f"{result['preset']} b{result['batch']}"
    return [
        _row(
            f"training inside the run driver, {label}",
            result["driver_images_per_s"],
            "img/s",
            f"isolated step {result['isolated_images_per_s']:.2f}",
            result["driver_over_step"],
            ">= 0.90",
        ),
        _row(
            "  by CPU-s per step (isolated / driver)",
            result["driver_cpu_s_per_step"],
            "CPU-s",
            f"isolated step {result['isolated_cpu_s_per_step']:.3f}",
            result["driver_over_step_cpu"],
            ">= 0.90",
        ),
        _row(
            f"input pipeline, {label}",
            result["pipeline_images_per_s"],
            "img/s",
            f"driver {result['driver_images_per_s']:.2f}",
            result["pipeline_over_training"],
            ">= 3",
        ),
    ]


def print_table(rows: list[dict]) -> None:
    print("\n=== make bench: summary (ratios are measured side by side in this run) ===")
    print(
        f"{'figure':<46s} {'value':>9s} {'unit':<10s} {'compared with':<22s} {'ratio':>6s}  target"
    )
    for r in rows:
        value = "-" if r["value"] is None else f"{r['value']:.3f}"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(
            f"{r['figure']:<46s} {value:>9s} {r['unit']:<10s} {r['comparison']:<22s} "
            f"{ratio:>6s}  {r['target']}"
        )


def main(argv):
    del argv
    unknown = set(FLAGS.skip) - set(_PARTS)
    if unknown:
        raise app.UsageError(f"--skip takes parts of {_PARTS}. Received: {sorted(unknown)}")
    if FLAGS.rounds < 1:
        raise app.UsageError(f"--rounds must be >= 1. Received: {FLAGS.rounds}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="mtsyn_bench_") as tmp:
        if "render" not in FLAGS.skip:
            rows += render_rows(_run("render_throughput.py", "--psnr_scenes=0"))
        if "compare" not in FLAGS.skip:
            path = os.path.join(tmp, "compare.json")
            _run(
                "compare_train_step.py",
                "--tf_variants=keras,fc6_dense,fc_conv",
                f"--rounds={FLAGS.rounds}",
                f"--json_out={path}",
            )
            rows += compare_rows(json.load(open(path)))
        if "fit" not in FLAGS.skip:
            path = os.path.join(tmp, "fit.json")
            _run("fit_vs_step.py", f"--json_out={path}")
            rows += fit_rows(json.load(open(path)))
        if "train_step" not in FLAGS.skip:
            _run("train_step.py")
        if "export" not in FLAGS.skip:
            _run("export_latency.py")
    print_table(rows)
    if FLAGS.json_out:
        from mtsyn_tf.io_utils import write_json_atomic

        write_json_atomic(FLAGS.json_out, rows)


if __name__ == "__main__":
    app.run(main)
