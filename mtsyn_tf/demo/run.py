"""The main job, end to end on the embedded data: render → real domain → train → evaluate →
export → report. ``scripts/demo.py`` is its command line; ``make demo`` runs that in a
fresh virtualenv.

Everything lands under one workspace directory (layout in WORKSPACE.md). Steps whose
outputs already exist are reused (the renderer's output is a pure function of its
settings), so a second ``make demo`` only retrains when asked to.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time

from absl import logging

# No TensorFlow import at module level: the renderer's worker processes are spawned and
# re-import the main script, and DrJit must never be loaded after TensorFlow in a process.
from mtsyn_tf.io_utils import write_json_atomic

# (metric, direction, task) for the headline table: trained must beat untrained on each.
HEADLINE_METRICS = (
    ("depth_abs_rel", "lower", "depth"),
    ("depth_rmse", "lower", "depth"),
    ("depth_delta1", "higher", "depth"),
    ("normals_mean", "lower", "normals"),
    ("normals_median", "lower", "normals"),
    ("normals_pct_22_5", "higher", "normals"),
    ("contour_ap", "higher", "contour"),
    ("contour_f_0_5", "higher", "contour"),
)


@dataclasses.dataclass
class DemoConfig:
    workspace: str = "workspace"
    num_scenes: int = 192
    num_test_scenes: int = 32
    resolution: int = 227
    # 4 samples + OIDN "fast" denoising: ~+12 dB PSNR over 8 undenoised samples at less
    # cost (benchmarks/render_throughput.py).
    spp: int = 4
    denoise: str = "fast"
    workers: int = 2
    preset: str = "small"
    batch_size: int = 16
    epochs: int = 10
    steps_per_epoch: int = 100
    learning_rate: float = 1e-3
    # "step": the reference's ×0.1 at 60 % / 90 %; "cosine" (+ warmup_fraction) for short runs.
    lr_schedule: str = "step"
    warmup_fraction: float = 0.0
    # The renders are simple rooms; 350 contour pixels (the reference's cut, for SUNCG)
    # would drop a large share of them from the edge loss.
    min_edge_pixels: int = 100
    seed: int = 0
    retrain: bool = False

    @property
    def paths(self) -> dict:
        ws = self.workspace
        return {
            "synthetic": os.path.join(ws, "data", "synthetic", "demo"),
            "real": os.path.join(ws, "data", "real", "embedded"),
            "run": os.path.join(ws, "runs", "demo"),
            "serving": os.path.join(ws, "exports", "demo", "serving"),
            "onnx": os.path.join(ws, "exports", "demo", "onnx"),
            "report": os.path.join(ws, "reports", "demo"),
        }


class _Timer:
    """Times the demo's steps; logs each start with the step count and the elapsed time."""

    STEPS = 7  # render, real domain, untrained baseline, train, export, evaluation, report

    def __init__(self):
        self.seconds = {}
        self.start = time.perf_counter()

    def step(self, name: str, fn, *args, **kwargs):
        elapsed = time.perf_counter() - self.start
        logging.info(
            "=== demo step %d/%d: %s (%.0f s elapsed) ===",
            len(self.seconds) + 1,
            self.STEPS,
            name,
            elapsed,
        )
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        self.seconds[name] = round(time.perf_counter() - start, 1)
        logging.info("=== %s done in %.1f s ===", name, self.seconds[name])
        return result


def _stamped_with(stamp: str, settings: dict) -> bool:
    """Whether the data beside ``stamp`` was made with exactly ``settings`` (reusable)."""
    if not os.path.exists(stamp):
        return False
    with open(stamp) as f:
        return json.load(f) == settings


def render_synthetic_data(cfg: DemoConfig, path: str) -> dict:
    from mtsyn_tf.data import shards
    from mtsyn_tf.render.generate import RENDER_REVISION, RenderConfig, generate_dataset

    settings = {
        "num_scenes": cfg.num_scenes,
        "num_test_scenes": cfg.num_test_scenes,
        "resolution": cfg.resolution,
        "spp": cfg.spp,
        "denoise": cfg.denoise,
        "seed": cfg.seed,
        # The same settings render different pixels after a renderer revision.
        "render_revision": RENDER_REVISION,
    }
    stamp = os.path.join(path, "demo_render_settings.json")
    if _stamped_with(stamp, settings):
        shards.list_shards(path, "train")
        logging.info("Reusing the rendered set in %s (same settings).", path)
        return {"reused": True, **settings}
    if os.path.exists(path):
        shutil.rmtree(path)
    render_config = RenderConfig(
        resolution=cfg.resolution, spp=cfg.spp, seed=cfg.seed, denoise=cfg.denoise
    )
    summary = generate_dataset(
        path,
        cfg.num_scenes,
        cfg.num_test_scenes,
        render_config,
        workers=cfg.workers,
        keep_samples=8,
    )
    samples = summary.pop("samples", [])
    if samples:
        from mtsyn_tf.data.sample_grid import write_sample_grid

        write_sample_grid(samples, os.path.join(path, "sample_grid.png"))
    write_json_atomic(stamp, settings)
    return summary


def _real_domain(path: str) -> dict:
    from mtsyn_tf.data import real_domain, shards

    # Shards written with other settings (before the photos were stored at Places365's
    # scale, or another short side) hold other pixels: they are written again.
    settings = {"source": real_domain.EMBEDDED, "short_side": real_domain.PLACES365_SIDE}
    stamp = os.path.join(path, "demo_real_settings.json")
    if _stamped_with(stamp, settings):
        return {
            "reused": True,
            "records": shards.read_manifest(path)["splits"]["train"]["num_records"],
        }
    summary = real_domain.write_real_shards(
        real_domain.EMBEDDED, path, overwrite=True, short_side=settings["short_side"]
    )
    write_json_atomic(stamp, settings)
    return summary


def _run_config(cfg: DemoConfig):
    from mtsyn_tf.trainer.config import RunConfig, TrainerConfig

    p = cfg.paths
    return RunConfig(
        workdir=p["run"],
        synthetic_dir=p["synthetic"],
        real_source=p["real"],
        preset=cfg.preset,
        trainer=TrainerConfig(min_edge_pixels=cfg.min_edge_pixels, seed=cfg.seed),
        batch_size=cfg.batch_size,
        epochs=cfg.epochs,
        steps_per_epoch=cfg.steps_per_epoch,
        learning_rate=cfg.learning_rate,
        lr_schedule=cfg.lr_schedule,
        warmup_fraction=cfg.warmup_fraction,
        seed=cfg.seed,
        verbose=2,
    )


def _export(run_dir: str, serving_dir: str, onnx_dir: str) -> dict:
    from mtsyn_tf.export.checkpoint import load_model_from_checkpoint
    from mtsyn_tf.export.onnx_export import export_onnx_predictor
    from mtsyn_tf.export.serving import export_for_serving
    from mtsyn_tf.progress import Progress

    progress = Progress("export", 2, "formats", interval_s=0.0)  # a line with ETA per format
    model, info = load_model_from_checkpoint(run_dir)
    contract = info["input_contract"]  # served = evaluated: the run's test-time transform
    for path in (serving_dir, onnx_dir):
        if os.path.exists(path):
            shutil.rmtree(path)
    version_dir = export_for_serving(model, serving_dir, input_contract=contract)
    progress.update()
    os.makedirs(onnx_dir, exist_ok=True)
    onnx_path = export_onnx_predictor(
        model, os.path.join(onnx_dir, "predictor.onnx"), input_contract=contract
    )
    contract.write(onnx_dir)
    progress.update()
    return {"serving": version_dir, "onnx": onnx_path}


def compare(trained: dict, untrained: dict) -> list[dict]:
    """Rows of the headline table with a verdict per metric."""
    rows = []
    for name, direction, task in HEADLINE_METRICS:
        if name not in trained or name not in untrained:
            continue
        t, u = trained[name], untrained[name]
        better = t < u if direction == "lower" else t > u
        rows.append(
            {
                "metric": name,
                "task": task,
                "direction": direction,
                "untrained": u,
                "trained": t,
                "better": bool(better),
            }
        )
    return rows


def run_demo(cfg: DemoConfig) -> dict:
    """Runs every step; returns the results written to ``<report>/results.json``."""
    from mtsyn_tf import runtime
    from mtsyn_tf.trainer.loop import train, untrained_metrics

    # Thread pools are fixed by the first TensorFlow op (the untrained baseline runs before
    # training), so they are sized here, not in loop.train.
    runtime.configure_threads()
    p = cfg.paths
    timer = _Timer()
    start = time.perf_counter()
    render = timer.step("render synthetic scenes", render_synthetic_data, cfg, p["synthetic"])
    real = timer.step("build embedded real domain", _real_domain, p["real"])
    run_cfg = _run_config(cfg)
    if cfg.retrain and os.path.exists(p["run"]):
        shutil.rmtree(p["run"])
    untrained = timer.step("evaluate untrained model", untrained_metrics, run_cfg)
    from mtsyn_tf.progress import training_callback

    progress = training_callback(cfg.epochs * cfg.steps_per_epoch, 2 * cfg.batch_size)
    results = timer.step("train", train, run_cfg, extra_callbacks=[progress])
    exports = timer.step("export (TF Serving + ONNX)", _export, p["run"], p["serving"], p["onnx"])

    from mtsyn_tf.demo.report import write_demo_report

    summary = {
        "config": dataclasses.asdict(cfg),
        "render": {k: v for k, v in render.items() if k != "samples"},
        "real": {k: v for k, v in real.items() if isinstance(v, (int, float, str, bool))},
        "untrained": untrained,
        "trained": results.get("eval", {}),
        "comparison": compare(results.get("eval", {}), untrained),
        "train_seconds": results["train_seconds"],
        "artifacts": {**{k: os.path.abspath(v) for k, v in p.items()}, **exports},
    }
    from mtsyn_tf.evaluation.registry import evaluate

    evaluation, _ = timer.step(
        "offline evaluation (qualitative, domain gap, motorcycle depth)",
        evaluate,
        p["run"],
        ["all_offline"],
        os.path.join(p["report"], "evaluation"),
        synthetic_dir=p["synthetic"],
    )
    summary["evaluation"] = {
        k: evaluation[k] for k in ("domain_gap", "motorcycle") if k in evaluation
    }
    timer.step("report", write_demo_report, summary, p, run_cfg)
    summary["step_seconds"] = timer.seconds
    summary["total_seconds"] = round(time.perf_counter() - start, 1)
    write_json_atomic(os.path.join(p["report"], "results.json"), summary)
    return summary
