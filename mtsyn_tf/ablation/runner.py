"""Trains and evaluates every (experiment, seed) of a grid once; a second call reuses them.

Each run lives in ``<workspace>/ablation/<grid>/<experiment>/seed<k>``. After training and
evaluation, ``ablation_result.json`` (the completion marker: the run's resolved config,
the evaluation protocol and every number) is written atomically; a run with that file is
finished and is reused. A run killed before it holds no marker: the next call trains it
again, and the trainer resumes from its newest epoch checkpoint. Changing a finished run's
config is an error (delete its directory to retrain); changing only the evaluation
protocol (e.g. adding a tfds data dir) re-evaluates it without retraining.

No TensorFlow at module level: the demo renderer's spawned workers re-import the caller,
and DrJit must never be loaded after TensorFlow in one process.
"""

from __future__ import annotations

import gc
import json
import os
import time

from absl import logging

from mtsyn_tf.io_utils import write_json_atomic

MARKER = "ablation_result.json"


def demo_data(workspace: str) -> dict:
    """The demo's data paths: its renders under the workspace and the embedded photos."""
    from mtsyn_tf.demo.run import DemoConfig

    return {
        "synthetic_dir": DemoConfig(workspace=workspace).paths["synthetic"],
        "real_source": "embedded",
    }


def render_demo_data(workspace: str) -> None:
    """Renders the demo's synthetic set once (reused when present, as ``make demo`` does)."""
    from mtsyn_tf.demo.run import DemoConfig, render_synthetic_data

    demo = DemoConfig(workspace=workspace)
    render_synthetic_data(demo, demo.paths["synthetic"])


def _fingerprint(cfg) -> dict:
    d = cfg.to_dict()
    for key in ("verbose", "restart"):
        d.pop(key, None)
    return json.loads(json.dumps(d, sort_keys=True, default=str))


def read_marker(run_dir: str) -> dict | None:
    path = os.path.join(run_dir, MARKER)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(
            f"Unreadable completion marker ({err}); delete it to redo the run. Received: {path}"
        ) from err


class _Progress:
    """Logs per-epoch and per-run progress with an ETA for the whole grid."""

    def __init__(self, runs: list, steps: dict):
        self.total_runs = len(runs)
        self.steps_left = sum(steps.values())
        self.steps = steps
        self.train_seconds = 0.0
        self.steps_done = 0
        self.eval_seconds = []
        self.start = time.time()

    def eta_minutes(self, evals_left: int) -> float | None:
        if not self.steps_done:
            return None
        per_step = self.train_seconds / self.steps_done
        per_eval = sum(self.eval_seconds) / len(self.eval_seconds) if self.eval_seconds else 0
        return (per_step * self.steps_left + per_eval * evals_left) / 60.0

    def callback(self, label: str, index: int, evals_left):
        import keras

        progress = self

        class EpochLog(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t = time.time()

            def on_epoch_end(self, epoch, logs=None):
                steps = self.params.get("steps") or 0
                progress.train_seconds += time.time() - self.t
                progress.steps_done += steps
                progress.steps_left = max(0, progress.steps_left - steps)
                eta = progress.eta_minutes(evals_left())
                logging.info(
                    "[%d/%d] %s epoch %d/%d done (L_BH %.4g); grid ETA %s",
                    index, progress.total_runs, label, epoch + 1, self.params.get("epochs"),
                    (logs or {}).get("loss_bh", float("nan")),  # the trainer's B/H loss
                    "?" if eta is None else f"{eta:.1f} min",
                )  # fmt: skip

        return EpochLog()


def run_grid(
    grid,
    workspace: str,
    data: dict | None = None,
    tfds_data_dir: str | None = None,
    tfds_probes=(),
    num_synthetic: int = 64,
    after_run=None,
) -> dict:
    """Trains/evaluates every run of ``grid`` not yet finished, then writes the report.

    Args:
        grid: a ``grid.Grid``.
        workspace: root directory; runs go under ``<workspace>/ablation/<grid.name>``.
        data: ``RunConfig`` data overrides (``synthetic_dir``, ``real_source``...); None:
            the demo's renders (rendered once if missing) for ``grid.data == "demo"``,
            else the configs' own paths.
        tfds_data_dir, tfds_probes: prepared tfds sets for extra probes (never downloaded).
        num_synthetic: held-out renders used for the domain gap.
        after_run: called with ``(experiment, seed, status)`` after each run (tests).

    Returns:
        ``{"runs": [...], "report": {...files}, "wall_seconds": float}``.
    """
    start = time.time()
    data = dict(data or {})
    render = grid.data == "demo" and "synthetic_dir" not in data
    if render:
        data = {**demo_data(workspace), **data}
    runs = [(e, s) for s in grid.seeds for e in grid.experiments]  # seed-major: a killed
    configs = {r: grid.run_config(workspace, *r, data) for r in runs}  # grid still has seed 0
    if render:  # after the configs are checked: a bad override fails before a long render
        render_demo_data(workspace)

    from mtsyn_tf import runtime

    runtime.configure_threads()  # before the first TensorFlow op
    import keras

    from mtsyn_tf.ablation import protocols
    from mtsyn_tf.ablation.report import write_ablation_report
    from mtsyn_tf.models import get_preset
    from mtsyn_tf.trainer.loop import train

    todo, markers = {}, {}
    for r, cfg in configs.items():
        marker = read_marker(cfg.workdir)
        if marker is not None and marker["config"] != _fingerprint(cfg):
            raise ValueError(
                f"{cfg.workdir} finished with other settings than grid {grid.name!r} now asks "
                f"for; delete that directory to retrain it. Received: {os.path.join(cfg.workdir, MARKER)}"
            )
        markers[r] = marker
        if marker is None:
            todo[r] = cfg.epochs * cfg.steps_per_epoch  # upper bound; a resume runs fewer
    protocol = protocols.protocol_key(num_synthetic, tfds_data_dir, tuple(tfds_probes))
    contexts = []

    def context():  # loaded only when something is evaluated (a reused grid never does)
        if not contexts:
            first = configs[runs[0]]
            image_size = get_preset(first.preset, **first.preset_overrides)["image_size"]
            contexts.append(
                protocols.make_context(
                    first.synthetic_dir,
                    image_size,
                    num_synthetic,
                    tfds_data_dir=tfds_data_dir,
                    tfds_probes=tuple(tfds_probes),
                )  # fmt: skip
            )
        return contexts[0]

    progress = _Progress(runs, todo)
    logging.info(
        "Ablation grid %r: %d runs (%d to train, %d finished) in %s",
        grid.name, len(runs), len(todo), len(runs) - len(todo),
        os.path.join(workspace, "ablation", grid.name),
    )  # fmt: skip

    def evals_left():
        return sum(1 for r in runs if markers[r] is None or markers[r]["protocol"] != protocol)

    records = []
    for index, r in enumerate(runs, 1):
        experiment, seed = r
        cfg, marker = configs[r], markers[r]
        label = f"{experiment} seed{seed}"
        status = "reused"
        train_seconds = marker["train_seconds"] if marker else 0.0
        if marker is None:
            logging.info("[%d/%d] %s: training in %s", index, len(runs), label, cfg.workdir)
            t = time.time()
            results = train(cfg, extra_callbacks=[progress.callback(label, index, evals_left)])
            train_seconds = time.time() - t
            status = "trained" if results["initial_epoch"] == 0 else "resumed"
        if marker is None or marker["protocol"] != protocol:
            t = time.time()
            evaluation = protocols.evaluate_run(cfg.workdir, context())
            eval_seconds = time.time() - t
            progress.eval_seconds.append(eval_seconds)
            status = status if marker is None else "re-evaluated"
            marker = {
                "experiment": experiment,
                "seed": seed,
                "config": _fingerprint(cfg),
                "protocol": protocol,
                "train_seconds": train_seconds,
                "eval_seconds": eval_seconds,
                "evaluation": evaluation,
            }
            write_json_atomic(os.path.join(cfg.workdir, MARKER), marker)
            markers[r] = marker
            keras.backend.clear_session()
            gc.collect()
        eta = progress.eta_minutes(evals_left())
        logging.info(
            "[%d/%d] %s %s (train %.0f s, eval %.0f s); grid ETA %s",
            index, len(runs), label, status, marker["train_seconds"], marker["eval_seconds"],
            "0 min" if eta is None and not evals_left() else
            ("?" if eta is None else f"{eta:.1f} min"),
        )  # fmt: skip
        records.append({**marker, "status": status, "workdir": cfg.workdir})
        if after_run is not None:
            after_run(experiment, seed, status)

    baselines = _random_init(grid, workspace, configs, context, protocol)
    report = write_ablation_report(
        grid,
        records,
        baselines,
        grid.da_taps({e: configs[(e, grid.seeds[0])] for e in grid.experiments}),
        protocol,
        grid.report_dir(workspace),
        wall_seconds=time.time() - start,
    )
    return {"runs": records, "report": report, "wall_seconds": time.time() - start}


def _random_init(grid, workspace, configs, context, protocol) -> list[dict]:
    """The protocols on a randomly initialised model per seed, and the constant depth
    predictor's motorcycle scores (cached like a run)."""
    from mtsyn_tf.ablation import protocols

    records = []
    for seed in grid.seeds:
        cfg = configs[(grid.experiments[0], seed)]
        run_dir = grid.run_dir(workspace, protocols.RANDOM_INIT, seed)
        marker = read_marker(run_dir)
        key = {"preset": cfg.preset, "preset_overrides": cfg.preset_overrides, "seed": seed}
        if marker is None or marker["config"] != key or marker["protocol"] != protocol:
            t = time.time()
            evaluation = protocols.evaluate_random_init(cfg, context())
            evaluation["constant_depth"] = protocols.constant_depth_baseline(context())
            marker = {
                "experiment": protocols.RANDOM_INIT,
                "seed": seed,
                "config": key,
                "protocol": protocol,
                "train_seconds": 0.0,
                "eval_seconds": time.time() - t,
                "evaluation": evaluation,
            }
            os.makedirs(run_dir, exist_ok=True)
            write_json_atomic(os.path.join(run_dir, MARKER), marker)
        records.append(marker)
    return records
