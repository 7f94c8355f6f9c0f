"""Ablation grids: named experiments (``mtsyn_tf.configs``) × seeds on one data set and budget.

A grid names configs of one scale; every run of a grid gets the same data paths and the
same training budget (the configs of one scale already share batch, epochs and steps; a
grid may shorten them all alike with ``budget``). Roles say which experiment plays which
part in the paper's claims (``claims.paper_claims``).
"""

from __future__ import annotations

import dataclasses
import os

# No TensorFlow here (mtsyn_tf.configs imports it): scripts/ablate.py checks its flags and
# renders the demo data before TensorFlow is loaded (see ablation.runner).

# Forward + backward of one synthetic image at 227² (SPEC §5 "Expected time": AlexNet
# trunk + three decoders), and the forward/backward of one real image through conv1-conv5.
SYNTHETIC_GFLOP = 75.0
REAL_GFLOP = 2.2


@dataclasses.dataclass(frozen=True)
class Grid:
    """Experiments × seeds of one scale.

    Attributes:
        name: directory name under ``<workspace>/ablation``.
        scale: the configs' scale (``demo`` / ``paper``).
        experiments: experiment names (``<scale>/<experiment>`` in ``mtsyn_tf.configs``).
        seeds: seeds every experiment runs with.
        roles: ``single_task`` (list), ``multitask_noda`` (name), ``multitask_da`` (list).
        budget: ``RunConfig`` overrides applied to every run alike (epochs, steps...).
        data: ``"demo"``: render + embedded photos under the workspace (``runner``);
            ``"given"``: the configs' own data paths (e.g. paper renders + Places365).
    """

    name: str
    scale: str
    experiments: tuple
    seeds: tuple
    roles: dict
    budget: dict = dataclasses.field(default_factory=dict)
    data: str = "demo"
    replicas: int = 1  # devices the configs' batch_size is per (paper: 8 GPUs, global 224)

    def run_dir(self, workspace: str, experiment: str, seed: int) -> str:
        return os.path.join(workspace, "ablation", self.name, experiment, f"seed{seed}")

    def report_dir(self, workspace: str) -> str:
        return os.path.join(workspace, "ablation", self.name, "report")

    def run_config(self, workspace: str, experiment: str, seed: int, data: dict):
        """The resolved ``RunConfig`` of one run (``data``: synthetic_dir / real_source...)."""
        if experiment not in self.experiments:
            raise ValueError(
                f"Experiment {experiment!r} is not in grid {self.name!r}. Expected one of "
                f"{self.experiments}. Received: {experiment}"
            )
        from mtsyn_tf.configs import get_config

        overrides = {
            **self.budget,
            **data,
            "workdir": self.run_dir(workspace, experiment, seed),
            "seed": seed,
            "verbose": 0,
        }
        return get_config(f"{self.scale}/{experiment}", **overrides)

    def da_taps(self, configs: dict) -> dict:
        """``{DA experiment: tap}`` from the resolved configs (None → the preset's)."""
        from mtsyn_tf.models import get_preset

        taps = {}
        for name in self.roles.get("multitask_da", ()):
            cfg = configs[name]
            taps[name] = cfg.trainer.da_tap or get_preset(cfg.preset)["da_tap"]
        return taps


TABLE4_ROLES = {
    "single_task": ["contour", "depth", "normals"],
    "multitask_noda": "multitask_noda",
    "multitask_da": ["multitask_da_conv5"],
}

GRIDS = {
    # The default: three single tasks, multi-task without DA, with DA at conv5;
    # 3 seeds; the demo configs' budget (≈3 min of training per run on 2 cores).
    "demo": Grid(
        name="demo",
        scale="demo",
        experiments=("contour", "depth", "normals", "multitask_noda", "multitask_da_conv5"),
        seeds=(0, 1, 2),
        roles=TABLE4_ROLES,
    ),
    # Table 4 rows 1-9 at paper scale (GPU recipe; README "Ablation grid").
    "paper": Grid(
        name="paper",
        scale="paper",
        experiments=(
            "contour",
            "depth",
            "normals",
            "multitask_noda",
            "multitask_da_conv1",
            "multitask_da_conv4",
            "multitask_da_conv5",
            "multitask_da_fc6",
            "multitask_da_conv5_bifool",
        ),
        seeds=(0, 1, 2),
        roles={
            **TABLE4_ROLES,
            "multitask_da": [
                "multitask_da_conv1",
                "multitask_da_conv4",
                "multitask_da_conv5",
                "multitask_da_fc6",
            ],
        },
        data="given",
        replicas=8,  # mtsyn_tf.configs.common.PAPER_REPLICAS
    ),
}


def get_grid(name: str, seeds=None, experiments=None, budget=None) -> Grid:
    """A named grid, optionally with other seeds / a subset of experiments / a budget."""
    if name not in GRIDS:
        raise ValueError(f"Unknown grid. Expected one of {sorted(GRIDS)}. Received: grid={name!r}")
    grid = GRIDS[name]
    changes = {}
    if seeds:
        changes["seeds"] = tuple(int(s) for s in seeds)
    if experiments:
        unknown = [e for e in experiments if e not in grid.experiments]
        if unknown:
            raise ValueError(
                f"Experiments {unknown} are not in grid {name!r}. Expected some of "
                f"{grid.experiments}. Received: experiments={list(experiments)}"
            )
        changes["experiments"] = tuple(experiments)
    if budget:
        changes["budget"] = {**grid.budget, **budget}
    return dataclasses.replace(grid, **changes)


def training_pflop(cfg, replicas: int = 1) -> float:
    """FLOP of one run's training in PFLOP: every step sees ``batch_size × replicas ×
    grad_accum_steps`` synthetic and as many real images (paper configs: 8 replicas)."""
    images = cfg.epochs * cfg.steps_per_epoch * cfg.batch_size * replicas * cfg.grad_accum_steps
    return images * (SYNTHETIC_GFLOP + REAL_GFLOP) * 1e9 / 1e15


def estimate(grid: Grid, workspace: str, data: dict, sustained_tflops: float) -> dict:
    """Training FLOP and device-hours of the whole grid at ``sustained_tflops`` per device.

    Every run is costed as a 3-task run (single-task runs have fewer decoders: an upper
    bound); evaluation is not included.
    """
    if not sustained_tflops > 0:
        raise ValueError(f"sustained_tflops must be > 0. Received: {sustained_tflops}")
    per_run = {
        e: training_pflop(grid.run_config(workspace, e, grid.seeds[0], data), grid.replicas)
        for e in grid.experiments
    }
    total = sum(per_run.values()) * len(grid.seeds)
    return {
        "pflop_per_run": per_run,
        "runs": len(per_run) * len(grid.seeds),
        "total_pflop": total,
        "device_hours": total * 1e15 / (sustained_tflops * 1e12) / 3600.0,
        "sustained_tflops": sustained_tflops,
    }
