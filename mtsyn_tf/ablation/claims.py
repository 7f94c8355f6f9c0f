"""Mean ± std over seeds, and the paper's claims as verdicts with an explicit noise rule.

Noise rule (stated in every report): two groups of per-seed values differ when a two-sided
Welch t-test (unequal variances) gives p < ``ALPHA``; the verdict is then "holds" or
"does not hold" by the sign of the difference in the claimed direction, else "within
seed noise". With one seed on either side there is no variance to test against: the
verdict follows the sign alone and the row says ``noise_test: "none (1 seed)"``. When both
groups have zero spread (fully deterministic runs) any non-zero difference is significant.
"""

from __future__ import annotations

import math

import numpy as np

ALPHA = 0.05
HOLDS, FAILS, NOISE = "holds", "does not hold", "within seed noise"
NOISE_RULE = (
    f"Two-sided Welch t-test over seeds; p < {ALPHA} → the sign of the difference decides "
    f"'{HOLDS}' / '{FAILS}', otherwise '{NOISE}'. With 1 seed on a side the sign alone "
    "decides (marked 'no noise estimate')."
)


def summarize(values) -> dict:
    """``{"mean", "std" (sample, ddof=1; 0 for one value), "n", "values"}``."""
    v = np.asarray([float(x) for x in values], dtype=np.float64)
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError(f"Need one or more finite values to summarize. Received: {values}")
    std = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
    return {"mean": float(v.mean()), "std": std, "n": int(v.size), "values": v.tolist()}


def welch_p_value(a, b) -> float | None:
    """Two-sided Welch t-test p-value; None when either side has fewer than 2 values."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size < 2 or b.size < 2:
        return None
    var = a.var(ddof=1) / a.size + b.var(ddof=1) / b.size
    diff = a.mean() - b.mean()
    if var == 0.0:  # both groups constant across seeds: the difference is exact
        return 1.0 if diff == 0.0 else 0.0
    from scipy import stats

    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def verdict(candidate, reference, direction: str) -> dict:
    """Does ``candidate`` beat ``reference`` in ``direction`` ("higher"/"lower")?

    Args:
        candidate, reference: per-seed values of the two sides of the claim.
        direction: "higher" when the claim says candidate > reference, "lower" for <.
    """
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower'. Received: {direction!r}")
    a, b = summarize(candidate), summarize(reference)
    diff = a["mean"] - b["mean"]
    better = diff > 0 if direction == "higher" else diff < 0
    p = welch_p_value(a["values"], b["values"])
    if p is None:
        result = HOLDS if better else FAILS
        noise_test = "none (1 seed)"
    else:
        result = NOISE if not p < ALPHA or diff == 0.0 else (HOLDS if better else FAILS)
        noise_test = f"Welch p={p:.3g}"
    return {
        "verdict": result,
        "candidate": a,
        "reference": b,
        "difference": diff,
        "p_value": p,
        "noise_test": noise_test,
        "direction": direction,
    }


def _values(per_run: dict, experiment: str, path: tuple) -> list | None:
    """Per-seed values at ``path`` (e.g. ("probe", "lfw", "conv5")) or None if absent."""
    values = []
    for result in per_run.get(experiment, []):
        node = result
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        if node is None or not math.isfinite(float(node)):
            return None
        values.append(float(node))
    return values or None


def paper_claims(roles: dict, per_run: dict, probe_taps, da_taps: dict) -> list[dict]:
    """The paper's three ablation claims, one row per (claim, dataset, tap).

    Args:
        roles: ``{"single_task": [names], "multitask_noda": name, "multitask_da": [names]}``.
        per_run: ``{experiment: [per-seed evaluation dicts]}`` (``runner`` results).
        probe_taps: taps the probes report (conv1..conv5).
        da_taps: ``{DA experiment: its tap}``.
    """
    rows = []
    noda = roles.get("multitask_noda")
    singles = roles.get("single_task", [])
    probe_sets = sorted(
        {name for runs in per_run.values() for r in runs for name in r.get("probe", {})}
    )
    if noda and singles:
        for dataset in probe_sets:
            for tap in probe_taps:
                path = ("probe", dataset, tap)
                means = {
                    s: np.mean(v) for s in singles if (v := _values(per_run, s, path)) is not None
                }
                mt = _values(per_run, noda, path)
                if not means or mt is None:
                    continue
                best = max(means, key=means.get)
                rows.append(
                    {
                        "claim": "multi-task ≥ best single task (probe)",
                        "measure": f"{dataset} probe accuracy @ {tap} (%)",
                        "candidate_name": noda,
                        "reference_name": f"{best} (best single task by mean)",
                        **verdict(mt, _values(per_run, best, path), "higher"),
                    }
                )
    for da in roles.get("multitask_da", []) if noda else []:
        tap = da_taps[da]
        path = ("pad", tap)
        a, b = _values(per_run, da, path), _values(per_run, noda, path)
        if a is not None and b is not None:
            rows.append(
                {
                    "claim": "DA lowers PAD at its tap vs no-DA",
                    "measure": f"proxy A-distance @ {tap}",
                    "candidate_name": da,
                    "reference_name": noda,
                    **verdict(a, b, "lower"),
                }
            )
        for dataset in probe_sets:
            for t in probe_taps:
                path = ("probe", dataset, t)
                a, b = _values(per_run, da, path), _values(per_run, noda, path)
                if a is None or b is None:
                    continue
                rows.append(
                    {
                        "claim": "DA improves the probe",
                        "measure": f"{dataset} probe accuracy @ {t} (%)",
                        "candidate_name": da,
                        "reference_name": noda,
                        **verdict(a, b, "higher"),
                    }
                )
    return rows
