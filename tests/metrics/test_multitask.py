import pytest

from mtsyn_tf.metrics.multitask import delta_mtl


def test_hand_case_signs_and_task_averaging():
    single = {"depth": {"rmse": 1.0, "delta1": 0.5}, "contour": {"ods": 0.8}}
    multi = {"depth": {"rmse": 0.9, "delta1": 0.55}, "contour": {"ods": 0.76}}
    result = delta_mtl(multi, single)
    # depth: rmse lower is better -> +10 %, delta1 higher -> +10 %; contour: -5 %.
    assert result["per_metric"]["depth"]["rmse"] == pytest.approx(10.0)
    assert result["per_metric"]["depth"]["delta1"] == pytest.approx(10.0)
    assert result["per_task"]["contour"] == pytest.approx(-5.0)
    assert result["delta_mtl"] == pytest.approx(2.5)


def test_identical_models_give_zero_and_overrides():
    metrics = {"normals": {"mean": 20.0, "pct_11_25": 40.0}}
    assert delta_mtl(metrics, metrics)["delta_mtl"] == 0.0
    out = delta_mtl({"x": {"custom": 2.0}}, {"x": {"custom": 1.0}}, {"custom": False})
    assert out["delta_mtl"] == pytest.approx(-100.0)


def test_errors():
    with pytest.raises(ValueError, match="unknown direction"):
        delta_mtl({"x": {"custom": 1.0}}, {"x": {"custom": 1.0}})
    with pytest.raises(ValueError, match="no single-task baseline"):
        delta_mtl({"x": {"rmse": 1.0}}, {"y": {"rmse": 1.0}})
    with pytest.raises(ValueError, match="lacks metric"):
        delta_mtl({"x": {"rmse": 1.0}}, {"x": {"mean": 1.0}})
    with pytest.raises(ValueError, match="undefined"):
        delta_mtl({"x": {"rmse": 1.0}}, {"x": {"rmse": 0.0}})
