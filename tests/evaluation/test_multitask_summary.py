import json

import pytest

from mtsyn_tf.evaluation.multitask_summary import mtl_summary, mtl_table


def _run(path, tasks, metrics):
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"trainer": {"tasks": list(tasks)}}))
    (path / "eval.json").write_text(json.dumps(metrics))
    return str(path)


def test_delta_mtl_closed_form(tmp_path):
    multi = _run(tmp_path / "mt", ("depth", "normals"),
                 {"loss_depth": 0.3, "depth_abs_rel": 0.18, "depth_delta1": 0.66,
                  "normals_mean": 27.0})  # fmt: skip
    depth = _run(tmp_path / "d", ("depth",), {"depth_abs_rel": 0.2, "depth_delta1": 0.6})
    normals = _run(tmp_path / "n", ("normals",), {"normals_mean": 30.0, "normals_median": 20.0})
    s = mtl_summary(multi, [depth, normals])
    # depth: abs_rel -(0.18-0.2)/0.2 = +10 %, delta1 +10 % → 10; normals: mean +10 % → 10.
    assert s["per_metric"]["depth"] == pytest.approx({"abs_rel": 10.0, "delta1": 10.0})
    assert s["delta_mtl"] == pytest.approx(10.0)
    table = mtl_table(s)
    assert table.rows[-1][-1] == pytest.approx(10.0)


def test_bad_runs_are_named(tmp_path):
    multi = _run(tmp_path / "mt", ("depth",), {"depth_abs_rel": 0.2})
    both = _run(tmp_path / "b", ("depth", "normals"), {"depth_abs_rel": 0.2})
    with pytest.raises(ValueError, match="exactly one task"):
        mtl_summary(multi, [both])
    with pytest.raises(ValueError, match="unreadable config.json"):
        mtl_summary(multi, [str(tmp_path / "missing")])
    empty = _run(tmp_path / "e", ("depth",), {"loss_depth": 1.0})
    with pytest.raises(ValueError, match="no metric for task"):
        mtl_summary(multi, [empty])
