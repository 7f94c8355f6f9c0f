"""Keras metrics under a 2-replica MirroredStrategy (two logical CPU devices)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("_mirrored_metrics_script.py")
REPO_ROOT = Path(__file__).resolve().parents[2]


def test_mirrored_strategy_sums_replicas():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # Each global batch of 4 was split over both replicas.
    assert out["replica_batch_sizes"] == [[2, 2], [2, 2]]
    for task, expected in out["numpy"].items():
        for name, value in expected.items():
            tol = 0.05 + 1e-4 if name == "median" else 1e-5 * max(1.0, abs(value))
            assert out["keras"][task][name] == pytest.approx(value, abs=tol), (task, name)
