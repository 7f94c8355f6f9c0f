"""A workdir is resumed only with the settings it was started with (or deleted by --restart).

Resuming skips ``epoch × steps_per_epoch`` batches of a stream seeded by ``seed`` and
continues a schedule sized by ``epochs × steps_per_epoch``; with other settings the run
would silently be neither the old nor the new one.
"""

from __future__ import annotations

import json
import os

import pytest

from mtsyn_tf.models import get_preset
from mtsyn_tf.trainer.config import RunConfig, TrainerConfig
from mtsyn_tf.trainer.run_checks import check_resume_config
from mtsyn_tf.trainer.run_record import data_manifests, delete_run


def _cfg(workdir, data, **kwargs):
    return RunConfig(
        workdir=str(workdir), synthetic_dir=data, preset="small", **{"batch_size": 2, **kwargs}
    )


def _record(cfg):
    """What ``record_run`` writes, minus the fields that need a strategy."""
    os.makedirs(cfg.workdir, exist_ok=True)
    preset = get_preset(cfg.preset, **cfg.preset_overrides)
    with open(os.path.join(cfg.workdir, "config.json"), "w") as f:
        json.dump(
            {
                **cfg.to_dict(),
                "resolved_preset": preset,
                "data_manifests": data_manifests(cfg),
            },
            f,
            default=str,
        )
    return preset


def test_same_settings_resume(tiny_synthetic_dir, tmp_path):
    cfg = _cfg(tmp_path / "run", tiny_synthetic_dir)
    preset = _record(cfg)
    check_resume_config(cfg, preset)
    # Settings that do not change what is trained may differ.
    check_resume_config(
        _cfg(tmp_path / "run", tiny_synthetic_dir, verbose=2, eval_split="val"), preset
    )


@pytest.mark.parametrize(
    "change, named",
    [
        ({"batch_size": 3}, "batch_size (2 -> 3)"),
        ({"seed": 5}, "seed (0 -> 5)"),
        ({"epochs": 31}, "epochs (30 -> 31)"),
        ({"learning_rate": 1e-4}, "learning_rate (0.001 -> 0.0001)"),
        ({"trainer": TrainerConfig(pool_size=7)}, "trainer.pool_size (128 -> 7)"),
    ],
)
def test_other_settings_are_refused_by_name(tiny_synthetic_dir, tmp_path, change, named):
    preset = _record(_cfg(tmp_path / "run", tiny_synthetic_dir))
    before = (tmp_path / "run" / "config.json").read_bytes()
    with pytest.raises(ValueError, match="Cannot resume") as info:
        check_resume_config(_cfg(tmp_path / "run", tiny_synthetic_dir, **change), preset)
    assert named in str(info.value) and "--restart" in str(info.value)
    assert (tmp_path / "run" / "config.json").read_bytes() == before


def test_restart_deletes_the_run_and_nothing_else(tmp_path):
    run = tmp_path / "run"
    for name in ("checkpoints", "tensorboard", "saved_model_base"):
        (run / name).mkdir(parents=True)
        (run / name / "x").write_text("x")
    for name in ("config.json", "history.csv", "eval.json"):
        (run / name).write_text("{}")
    (run / "notes.txt").write_text("mine")
    (run / "exports").mkdir()
    delete_run(str(run))
    assert sorted(os.listdir(run)) == ["exports", "notes.txt"]
