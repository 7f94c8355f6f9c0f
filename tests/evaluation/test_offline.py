import json
import os

import numpy as np
import pytest

from mtsyn_tf.data.writer import write_dataset
from mtsyn_tf.evaluation.registry import evaluate
from mtsyn_tf.models import build_multitask_model
from tests.data.conftest import make_synthetic_sample
from tests.evaluation.conftest import write_trainer_workdir


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    samples = [make_synthetic_sample(48, 64, seed=i, image_id=f"s{i}") for i in range(8)]
    write_dataset(samples, str(out), "test", 1, "synthetic", "fixture", grid_rows=0)
    return str(out)


def test_offline_report_end_to_end(tmp_path, synthetic_dir):
    run = write_trainer_workdir(build_multitask_model("small"), tmp_path / "da_run")
    other = write_trainer_workdir(build_multitask_model("small"), tmp_path / "noda_run")
    out = tmp_path / "report"
    result, sections = evaluate(run, ["all_offline"], str(out), synthetic_dir=synthetic_dir,
                                compare_workdirs=[other], num_synthetic=8)  # fmt: skip
    assert result["protocols"] == ["qualitative", "domain_gap", "motorcycle"]
    assert list(result["domain_gap"]) == ["da_run", "noda_run", "random init"]
    assert [s.heading for s in sections][0] == "Qualitative"
    for name in ("report.md", "report.html", "results.json"):
        assert (out / name).is_file()
    saved = json.loads((out / "results.json").read_text())
    assert saved["domain_gap"]["da_run"]["conv5"]["pad"] == pytest.approx(
        result["domain_gap"]["da_run"]["conv5"]["pad"]
    )
    pad = result["domain_gap"]["da_run"]["conv5"]
    assert pad["pad"] == pytest.approx(2 * (1 - 2 * pad["error"]))
    # 8 synthetic vs 8 photos x 4 crops, balanced per half.
    assert pad["num_train"] + pad["num_test"] <= 16
    moto = result["motorcycle"]["da_run"]
    assert set(moto) >= {"raw", "median_scaled", "median_scale_factor", "num_pixels"}
    assert moto["median_scaled"]["num_pixels"] == moto["num_pixels"] > 200_000
    md = (out / "report.md").read_text()
    assert "Proxy A-distance" in md and "Middlebury" in md
    figures = [rel for s in sections for _, rel in s.images]
    assert len(figures) == 4 + 3 + 1  # qualitative sheets, one PCA per model, motorcycle
    assert all((out / rel).is_file() for rel in figures)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".report")]  # no temp left


def test_failure_leaves_previous_report(tmp_path, synthetic_dir):
    run = write_trainer_workdir(build_multitask_model("small"), tmp_path / "run")
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("previous")
    with pytest.raises(ValueError, match="No shards|split"):
        evaluate(run, "all_offline", str(out), synthetic_dir=synthetic_dir, split="val")
    assert (out / "report.md").read_text() == "previous"
    assert np.all([not p.startswith(".report") for p in os.listdir(tmp_path)])
