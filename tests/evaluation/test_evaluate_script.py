import json
import os
import subprocess
import sys

import pytest

from mtsyn_tf.evaluation.registry import evaluate
from mtsyn_tf.models import build_multitask_model
from tests.evaluation.conftest import write_trainer_workdir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _evaluate(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "evaluate.py"), *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def test_motorcycle_protocol_and_preset_mismatch(tmp_path):
    run = write_trainer_workdir(build_multitask_model("small"), tmp_path / "run")
    out = tmp_path / "eval"
    ok = _evaluate("--protocol=motorcycle", f"--workdir={run}", f"--output_dir={out}")
    assert ok.returncode == 0, ok.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert results["motorcycle"]["run"]["num_pixels"] > 200_000
    assert results["protocols"] == ["motorcycle"] and "qualitative" not in results
    assert results["run"]["checkpoint"].endswith("ckpt-1")
    bad = _evaluate("--protocol=motorcycle", f"--workdir={run}", f"--output_dir={tmp_path / 'x'}",
                    "--expected_preset=paper_alexnet")  # fmt: skip
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines()[-1].startswith("evaluate.py: error: Preset mismatch")
    assert not (tmp_path / "x").exists()
    # A flag the protocol does not take is named, not silently ignored.
    other = _evaluate("--protocol=motorcycle", f"--workdir={run}", f"--output_dir={tmp_path / 'y'}",
                      "--tap=conv5")  # fmt: skip
    last = other.stderr.strip().splitlines()[-1]
    assert other.returncode != 0 and "Traceback" not in other.stderr
    assert last.startswith("evaluate.py: error: No protocol of ['motorcycle'] takes ['tap']")
    assert last.endswith("Received: tap='conv5'")
    assert not (tmp_path / "y").exists()


def test_evaluate_errors_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="Unknown protocol"):
        evaluate("run", ["imagenet"], str(tmp_path / "o"))
    run = write_trainer_workdir(build_multitask_model("small"), tmp_path / "run")
    with pytest.raises(ValueError, match="nyud_mat"):
        evaluate(run, "nyud_normals", str(tmp_path / "o"))
    with pytest.raises(ValueError, match="synthetic shards"):
        evaluate(run, "qualitative", str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()
