"""The table of evaluators: complete, typed settings, one-line errors, ``evaluate()``'s API."""

import dataclasses
import importlib
import inspect
import pkgutil

import numpy as np
import pytest

from mtsyn_tf.evaluation import evaluators as evaluators_pkg
from mtsyn_tf.evaluation.evaluator import EvalRun, Evaluator
from mtsyn_tf.evaluation.registry import (
    EVALUATORS,
    GROUPS,
    PROTOCOLS,
    evaluate,
    expand,
    make_evaluator,
    make_evaluators,
)
from tests.evaluation.conftest import write_trainer_workdir


def _protocol_classes() -> set:
    """Every concrete evaluator defined under mtsyn_tf/evaluation/evaluators/."""
    found = set()
    for info in pkgutil.iter_modules(evaluators_pkg.__path__):
        module = importlib.import_module(f"{evaluators_pkg.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Evaluator) and cls.__module__ == module.__name__ and cls.name:
                found.add(cls)
    return found


def test_every_evaluator_is_in_the_one_table():
    assert _protocol_classes() == set(EVALUATORS.values())
    for name, cls in EVALUATORS.items():
        assert cls.name == name and cls.title and dataclasses.is_dataclass(cls)
    assert set(PROTOCOLS) == set(EVALUATORS) | set(GROUPS)
    assert all(set(members) <= set(EVALUATORS) for members in GROUPS.values())


def test_every_evaluator_builds_with_its_required_settings():
    required = {
        "heldout_synthetic": {"synthetic_dir": "s"},
        "qualitative": {"synthetic_dir": "s"},
        "domain_gap": {"synthetic_dir": "s"},
        "nyud_normals": {"nyud_mat": "a.mat", "nyud_splits": "b.mat"},
    }
    for name in EVALUATORS:
        evaluator = make_evaluator(name, **required.get(name, {}))
        assert evaluator.setting_names() == tuple(f.name for f in dataclasses.fields(evaluator))


def test_unknown_names_and_settings_are_one_line_errors():
    with pytest.raises(
        ValueError, match=r"Unknown protocol\. Expected one of .*Received: 'imagenet'"
    ):
        expand(["motorcycle", "imagenet"])
    with pytest.raises(ValueError) as err:
        make_evaluator("voc07_svm", tap="fc6", epochs=3)
    message = str(err.value)
    assert "\n" not in message and message.startswith("Protocol 'voc07_svm' takes the settings")
    assert "'tap'" in message and message.endswith("Received: epochs=3")
    with pytest.raises(ValueError, match=r"No protocol of \['motorcycle'\] takes \['steps'\]"):
        make_evaluators(["motorcycle"], {"steps": 3})


@pytest.mark.parametrize(
    "name, settings, fragment",
    [
        ("linear_probe", {"steps": "100"}, "steps must be int | None. Received: steps='100'"),
        ("linear_probe", {"epochs": 2.5}, "epochs must be int. Received: epochs=2.5"),
        ("voc07_cls", {"rescale": "no"}, "rescale must be bool. Received: rescale='no'"),
        ("voc07_cls", {"test_crops": "five"}, "test_crops must be one of ('ten', 'center')"),
        ("voc07_det", {"transfer_input": "grey"}, "transfer_input must be one of"),
        ("voc12_det", {"convention": "coco"}, "convention must be one of"),
        ("nyud_normals", {"nyud_mat": "a.mat"}, "needs nyud_splits"),
        ("domain_gap", {"synthetic_dir": "s", "num_synthetic": 2}, "num_synthetic must be >= 4"),
        ("mtl_summary", {"single_task_workdirs": "runs/depth"}, "single_task_workdirs must be"),
    ],
)
def test_settings_are_typed(name, settings, fragment):
    with pytest.raises(ValueError, match=f"^Protocol '{name}'") as err:
        make_evaluator(name, **settings)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_shared_and_per_protocol_settings():
    evaluators = make_evaluators(
        ["all_offline", "linear_probe"],
        {"synthetic_dir": "s", "seed": 3, "steps": 5, "domain_gap": {"seed": 7}},
    )
    assert list(evaluators) == ["qualitative", "domain_gap", "motorcycle", "linear_probe"]
    assert [e.seed for e in list(evaluators.values())[:3]] == [3, 7, 3]
    assert evaluators["qualitative"].synthetic_dir == "s" and evaluators["linear_probe"].steps == 5
    assert expand(["motorcycle", "all_offline"]) == ["motorcycle", "qualitative", "domain_gap"]


def test_settings_fail_before_the_run_is_read(tmp_path):
    # A missing run would say "Checkpoint not found"; the bad setting must be reported first.
    with pytest.raises(ValueError, match="batch_size must be int"):
        evaluate(str(tmp_path / "nowhere"), ["nyud_normals"], str(tmp_path / "o"),
                 nyud_mat="a", nyud_splits="b", batch_size=None)  # fmt: skip
    assert not (tmp_path / "o").exists()


def test_in_memory_model_matches_its_run_directory(small_model, tmp_path):
    """``evaluate`` takes a model as well as a run: same weights, same numbers."""
    run = write_trainer_workdir(small_model, tmp_path / "run")
    from_model, sections = evaluate(small_model, ["motorcycle"])
    from_run, _ = evaluate(run, "motorcycle", str(tmp_path / "report"))
    assert from_model["run"] == {"name": "model", "path": None, "checkpoint": None,
                                 "preset": small_model.preset}  # fmt: skip
    assert set(from_model["motorcycle"]) == {"model", "random init"}
    for name_model, name_run in (("model", "run"), ("random init", "random init")):
        a, b = from_model["motorcycle"][name_model], from_run["motorcycle"][name_run]
        # Same weights, same photo, same kernels in one process: bit-identical numbers.
        np.testing.assert_array_equal(a["raw"]["abs_rel"], b["raw"]["abs_rel"])
    assert sections and all(not s.images for s in sections)  # figures went with the temp dir
    assert (tmp_path / "report" / "motorcycle" / "depth.png").is_file()
    with pytest.raises(ValueError, match="in-memory model has none"):
        evaluate(small_model, ["mtl_summary"])


def test_eval_run_accepts_paths_models_and_itself(small_model, tmp_path):
    target = EvalRun.of(tmp_path / "run")
    assert target.path == str(tmp_path / "run") and target.name == "run"
    assert EvalRun.of(target) is target
    assert EvalRun.of(small_model).model is small_model
    with pytest.raises(ValueError, match="Received: int"):
        EvalRun.of(3)
