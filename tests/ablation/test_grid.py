"""A tiny grid end to end: 2 experiments × 1 seed, killed after one run, then continued."""

import json
import os

import pytest

from mtsyn_tf.ablation import runner
from mtsyn_tf.ablation.grid import Grid, get_grid


def _tiny_grid(**budget):
    return Grid(
        name="tiny",
        scale="demo",
        experiments=("depth", "multitask_noda"),
        seeds=(0,),
        roles={"single_task": ["depth"], "multitask_noda": "multitask_noda", "multitask_da": []},
        budget={
            "batch_size": 2,
            "epochs": 1,
            "steps_per_epoch": 2,
            "trainer.min_edge_pixels": 0,
            **budget,
        },
        data="given",
    )


class _Killed(Exception):
    pass


def _kill_after_first(experiment, seed, status):
    raise _Killed(experiment)


def test_tiny_grid_is_resumable_and_reports(tiny_synthetic_dir, tmp_path):
    workspace = str(tmp_path)
    grid = _tiny_grid()
    data = {"synthetic_dir": tiny_synthetic_dir}
    run_dirs = [grid.run_dir(workspace, e, 0) for e in grid.experiments]

    with pytest.raises(_Killed):  # the grid dies right after its first run's marker
        runner.run_grid(grid, workspace, data=data, num_synthetic=4, after_run=_kill_after_first)
    assert os.path.exists(os.path.join(run_dirs[0], runner.MARKER))
    assert not os.path.exists(os.path.join(run_dirs[1], runner.MARKER))
    first = runner.read_marker(run_dirs[0])

    statuses = []
    result = runner.run_grid(
        grid, workspace, data=data, num_synthetic=4, after_run=lambda *a: statuses.append(a[2])
    )
    assert statuses == ["reused", "trained"]
    # The reused run was not retrained: its marker (and its numbers) are the first call's.
    assert runner.read_marker(run_dirs[0]) == first

    report = result["report"]
    for name in ("report.html", "report.md", "results.json"):
        assert os.path.getsize(report[name]) > 0
    results = json.load(open(report["results.json"]))
    markers = {e: runner.read_marker(d) for e, d in zip(grid.experiments, run_dirs)}
    depth_eval, mt_eval = markers["depth"]["evaluation"], markers["multitask_noda"]["evaluation"]
    # Every protocol ran for every run: 7 PAD taps, 5 probe taps, motorcycle for depth runs.
    for evaluation in (depth_eval, mt_eval):
        assert len(evaluation["pad"]) == 7 and len(evaluation["probe"]["lfw_faces"]) == 5
        assert "motorcycle" in evaluation
    assert set(depth_eval["synthetic"]) == {"depth"}
    assert set(mt_eval["synthetic"]) == {"contour", "depth", "normals"}
    # The claim rows carry the runs' own numbers, judged by sign (1 seed).
    rows = results["claims"]
    assert {r["claim"] for r in rows} == {"multi-task ≥ best single task (probe)"}
    assert len(rows) == 5
    for row in rows:
        tap = row["measure"].split("@ ")[1].split(" ")[0]
        mt, single = mt_eval["probe"]["lfw_faces"][tap], depth_eval["probe"]["lfw_faces"][tap]
        assert row["candidate"]["mean"] == pytest.approx(mt)
        assert row["reference"]["mean"] == pytest.approx(single)
        assert row["verdict"] == ("holds" if mt > single else "does not hold")
        assert row["noise_test"] == "none (1 seed)"
    md = open(report["report.md"]).read()
    assert "within seed noise" in md and "random_init" in md and "constant" in md

    # A third call trains nothing; changing a finished run's settings is a clear error.
    statuses.clear()
    runner.run_grid(
        grid, workspace, data=data, num_synthetic=4, after_run=lambda *a: statuses.append(a[2])
    )
    assert statuses == ["reused", "reused"]
    with pytest.raises(ValueError, match="other settings"):
        runner.run_grid(_tiny_grid(steps_per_epoch=3), workspace, data=data, num_synthetic=4)


def test_get_grid_checks_names():
    assert get_grid("demo").experiments[-1] == "multitask_da_conv5"
    assert get_grid("demo", seeds=["4"]).seeds == (4,)
    with pytest.raises(ValueError, match="Unknown grid"):
        get_grid("demoo")
    with pytest.raises(ValueError, match="not in grid"):
        get_grid("demo", experiments=["multitask_da_conv4"])
