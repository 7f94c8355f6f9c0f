"""``scripts/train.py --config=NAME``: the named experiment, then flags, then --set, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mtsyn_tf.configs import get_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "train.py")


def _run(*args):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, SCRIPT, *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_train_runs_a_named_experiment_with_overrides(tiny_synthetic_dir, tmp_path):
    workdir = str(tmp_path / "run")
    out = _run(
        "--config=demo/depth",
        f"--synthetic_dir={tiny_synthetic_dir}",
        f"--workdir={workdir}",
        "--batch_size=2",
        "--epochs=1",
        "--steps_per_epoch=1",
        "--eval_split=none",
        "--verbose=0",
        "--set=trainer.pool_size=4",
        "--set=trainer.min_edge_pixels=0",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    with open(os.path.join(workdir, "config.json")) as f:
        recorded = json.load(f)
    named = get_config("demo/depth").to_dict()
    # The experiment's own settings, where no flag or --set was given ...
    assert recorded["trainer"]["tasks"] == ["depth"] and recorded["trainer"]["adapt"] is False
    for key in ("preset", "learning_rate", "lr_drops", "real_source", "image_summaries"):
        assert recorded[key] == named[key], key
    assert recorded["trainer"]["loss_weights"] == named["trainer"]["loss_weights"]
    # ... and the command line's where it was.
    assert (recorded["batch_size"], recorded["epochs"], recorded["steps_per_epoch"]) == (2, 1, 1)
    assert recorded["trainer"]["pool_size"] == 4 and recorded["trainer"]["min_edge_pixels"] == 0
    assert recorded["workdir"] == workdir


def test_bad_config_name_and_field_are_one_line_errors(tmp_path):
    bad_field = _run("--config=demo/depth", "--set=trainer.da_tp=conv4")
    assert bad_field.returncode == 1
    last = bad_field.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: Unknown config field 'trainer.da_tp'")
    assert "close matches: trainer.da_tap" in last
    assert "Traceback" not in bad_field.stderr
