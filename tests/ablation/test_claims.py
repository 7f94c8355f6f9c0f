"""Verdicts: holds / does not hold / within seed noise, and which runs each claim compares."""

import pytest

from mtsyn_tf.ablation import claims


def test_welch_p_value_matches_the_closed_form():
    # a=[1,2,3], b=[4,5,6]: t = -3/sqrt(2/3) = -3.674 with 4 degrees of freedom → p = 0.0213.
    assert claims.welch_p_value([1, 2, 3], [4, 5, 6]) == pytest.approx(0.02131, abs=1e-4)
    assert claims.welch_p_value([1.0], [4, 5, 6]) is None


def test_clear_gain_holds_and_clear_loss_does_not():
    better = claims.verdict([10.0, 10.2, 9.9], [5.0, 5.3, 4.8], "higher")
    assert better["verdict"] == claims.HOLDS
    assert better["difference"] == pytest.approx(10.0333 - 5.0333, abs=1e-3)
    worse = claims.verdict([5.0, 5.3, 4.8], [10.0, 10.2, 9.9], "higher")
    assert worse["verdict"] == claims.FAILS
    # "lower" claims flip the sign (PAD: smaller is the claimed effect).
    assert claims.verdict([5.0, 5.3, 4.8], [10.0, 10.2, 9.9], "lower")["verdict"] == claims.HOLDS


def test_overlapping_seeds_are_within_noise():
    # diff -1.5, standard error 0.816, t = -1.84 at 4 dof → p = 0.14 > 0.05.
    row = claims.verdict([1.0, 2.0, 3.0], [2.5, 3.5, 4.5], "higher")
    assert row["verdict"] == claims.NOISE
    assert row["p_value"] == pytest.approx(0.140, abs=2e-3)
    # A large mean gap with a larger spread is noise too.
    assert claims.verdict([10, 30, 50], [0, 20, 25], "higher")["verdict"] == claims.NOISE


def test_one_seed_decides_by_sign_and_says_so():
    row = claims.verdict([0.7], [0.6], "higher")
    assert row["verdict"] == claims.HOLDS and row["noise_test"] == "none (1 seed)"
    assert claims.verdict([0.5], [0.6], "higher")["verdict"] == claims.FAILS


def test_deterministic_runs_any_difference_counts():
    assert claims.verdict([2.0, 2.0], [1.0, 1.0], "higher")["verdict"] == claims.HOLDS
    assert claims.verdict([1.0, 1.0], [1.0, 1.0], "higher")["verdict"] == claims.NOISE


def test_summarize_uses_the_sample_std():
    s = claims.summarize([1.0, 2.0, 3.0])
    assert (s["mean"], s["std"], s["n"]) == (2.0, 1.0, 3)  # ddof=1: sqrt(2/2)
    assert claims.summarize([4.0])["std"] == 0.0


def test_summarize_rejects_empty_and_nan():
    with pytest.raises(ValueError, match="finite"):
        claims.summarize([])
    with pytest.raises(ValueError, match="finite"):
        claims.summarize([1.0, float("nan")])
    with pytest.raises(ValueError, match="direction"):
        claims.verdict([1.0], [2.0], "up")


def _run(probe, pad):
    return {"probe": {"lfw": {"conv5": probe}}, "pad": {"conv5": pad}}


def test_paper_claims_compare_the_right_runs():
    per_run = {
        "contour": [_run(60, 1.0), _run(61, 1.0)],
        "depth": [_run(70, 1.0), _run(71, 1.0)],  # best single task by mean
        "multitask_noda": [_run(80, 1.5), _run(81, 1.6)],
        "multitask_da_conv5": [_run(50, 0.5), _run(51, 0.6)],
    }
    roles = {
        "single_task": ["contour", "depth"],
        "multitask_noda": "multitask_noda",
        "multitask_da": ["multitask_da_conv5"],
    }
    rows = claims.paper_claims(roles, per_run, ["conv5"], {"multitask_da_conv5": "conv5"})
    by_claim = {r["claim"]: r for r in rows}
    mt = by_claim["multi-task ≥ best single task (probe)"]
    assert mt["reference_name"].startswith("depth")
    assert mt["reference"]["mean"] == 70.5 and mt["candidate"]["mean"] == 80.5
    assert mt["verdict"] == claims.HOLDS
    pad = by_claim["DA lowers PAD at its tap vs no-DA"]
    assert pad["candidate"]["mean"] == pytest.approx(0.55)
    assert pad["reference"]["mean"] == pytest.approx(1.55)
    assert pad["verdict"] == claims.HOLDS
    assert by_claim["DA improves the probe"]["verdict"] == claims.FAILS
    assert len(rows) == 3


def test_paper_claims_skip_what_the_grid_lacks():
    per_run = {"depth": [_run(70, 1.0)], "multitask_noda": [_run(80, 1.5)]}
    roles = {"single_task": ["depth"], "multitask_noda": "multitask_noda", "multitask_da": []}
    rows = claims.paper_claims(roles, per_run, ["conv5"], {})
    assert [r["claim"] for r in rows] == ["multi-task ≥ best single task (probe)"]
