"""``--profile_steps``: argument checks and a trace written by a real (tiny) run."""

import glob
import os

import pytest

from mtsyn_tf.trainer.config import TrainerConfig
from mtsyn_tf.trainer.loop import RunConfig, train
from mtsyn_tf.trainer.profiling import parse_profile_steps


def test_parse_profile_steps():
    assert parse_profile_steps(None) is None and parse_profile_steps("") is None
    assert parse_profile_steps("3,5") == (3, 5)
    assert parse_profile_steps(["2", "2"]) == (2, 2)
    for bad in ("5", "a,b", "0,2", "4,3", "1,2,3"):
        with pytest.raises(ValueError, match="profile_steps"):
            parse_profile_steps(bad)


def test_run_writes_a_profiler_trace(tiny_synthetic_dir, tmp_path):
    cfg = RunConfig(
        workdir=str(tmp_path / "run"),
        synthetic_dir=tiny_synthetic_dir,
        preset="small",
        batch_size=1,
        epochs=1,
        steps_per_epoch=3,
        trainer=TrainerConfig(pool_size=2, min_edge_pixels=0),
        eval_split="none",
        image_summaries=False,
        verbose=0,
        profile_steps=(2, 3),
    )
    train(cfg)
    traces = glob.glob(
        os.path.join(cfg.workdir, "profile", "plugins", "profile", "*", "*.xplane.pb")
    )
    assert traces and os.path.getsize(traces[0]) > 0
