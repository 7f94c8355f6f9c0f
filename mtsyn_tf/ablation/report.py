"""One report for a grid: claims with verdicts, mean ± std tables, bar charts (md/HTML/JSON)."""

from __future__ import annotations

import os

from mtsyn_tf.ablation import claims, plots, protocols
from mtsyn_tf.evaluation.report import Section, Table, report_directory, write_report
from mtsyn_tf.io_utils import write_png

SYNTHETIC_COLUMNS = (
    ("depth", "abs_rel"),
    ("depth", "rmse"),
    ("depth", "delta1"),
    ("normals", "mean"),
    ("normals", "median"),
    ("normals", "pct_22_5"),
    ("contour", "ap"),
    ("contour", "f_0_5"),
)
DEPTH_COLUMNS = ("abs_rel", "rmse", "delta1")


def _get(d, path):
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def mean_std(evaluations: list, path) -> tuple[float, float] | None:
    values = [_get(e, path) for e in evaluations]
    if not values or any(v is None for v in values):
        return None
    s = claims.summarize(values)
    return s["mean"], s["std"]


def _cell(ms) -> str:
    return "n/a" if ms is None else f"{ms[0]:.3f} ± {ms[1]:.3f}"


def _summary_table(title, per_run, names, columns, path_of) -> tuple[Table, dict]:
    rows, numbers = [], {}
    for name in names:
        cells = [mean_std(per_run[name], path_of(c)) for c in columns]
        numbers[name] = {
            str(c): None if m is None else {"mean": m[0], "std": m[1]}
            for c, m in zip(columns, cells)
        }
        rows.append([name, *[_cell(m) for m in cells]])
    return Table(title, ["experiment", *[str(c) for c in columns]], rows), numbers


def _claims_table(rows: list) -> Table:
    out = []
    for r in rows:
        a, b = r["candidate"], r["reference"]
        out.append(
            [
                r["claim"], r["measure"],
                f"{r['candidate_name']}: {a['mean']:.3f} ± {a['std']:.3f} (n={a['n']})",
                f"{r['reference_name']}: {b['mean']:.3f} ± {b['std']:.3f} (n={b['n']})",
                f"{r['difference']:+.3f}", r["noise_test"], r["verdict"],
            ]
        )  # fmt: skip
    columns = ["claim", "measure", "candidate", "reference", "Δ", "noise test", "verdict"]
    return Table("The paper's claims at this scale", columns, out)


def _bars(tmp, rel, title, per_run, names, groups, path_of) -> tuple[str, str]:
    series = {n: [mean_std(per_run[n], path_of(g)) for g in groups] for n in names}
    write_png(os.path.join(tmp, rel), plots.bar_chart(list(groups), series, title))
    return title, rel


def write_ablation_report(grid, records, baselines, da_taps, protocol, output_dir, wall_seconds):
    """Writes ``report.md`` / ``report.html`` / ``results.json`` (+ plots) to ``output_dir``."""
    constant = baselines[0]["evaluation"]["constant_depth"]
    samples = records[0]["evaluation"]["pad_samples"]
    per_run = {e: [] for e in grid.experiments}
    for r in records:
        per_run[r["experiment"]].append(r["evaluation"])
    claim_rows = claims.paper_claims(grid.roles, per_run, _probe_taps(records), da_taps)
    with_random = {**per_run, protocols.RANDOM_INIT: [b["evaluation"] for b in baselines]}
    names = [*grid.experiments, protocols.RANDOM_INIT]
    probe_taps = _probe_taps(records)
    probe_sets = sorted({p for r in records for p in r["evaluation"]["probe"]})
    gap_taps = list(records[0]["evaluation"]["pad"])
    depth_runs = [e for e in grid.experiments if all("motorcycle" in x for x in per_run[e])]

    sections, numbers = [], {}
    held = sorted({(r["experiment"], r["seed"]) for r in records})
    budget = records[0]["config"]
    sections.append(
        Section(
            f"Ablation grid {grid.name!r}",
            text=(
                f"{len(grid.experiments)} experiments × seeds {list(grid.seeds)} ({len(held)} runs), "
                f"configs '{grid.scale}/<experiment>' (mtsyn_tf.configs), preset "
                f"{budget['preset']}, batch {budget['batch_size']}, {budget['epochs']} epochs × "
                f"{budget['steps_per_epoch']} steps, synthetic data {budget['synthetic_dir']}, "
                f"real domain {budget['real_source']}. Wall time of this call "
                f"{wall_seconds / 60:.1f} min (runs reused from earlier calls count as 0). "
                f"Values are mean ± sample std over seeds. Verdict rule: {claims.NOISE_RULE} "
                "Several rows test related hypotheses (one per tap); no multiple-comparison "
                "correction is applied, so read single 'holds' rows among many with care."
            ),
            tables=[_claims_table(claim_rows)],
        )
    )
    with report_directory(output_dir) as tmp:
        images = []
        for dataset in probe_sets:
            table, numbers[f"probe/{dataset}"] = _summary_table(
                f"Linear probe on {dataset} (accuracy %, higher = better)",
                with_random, names, probe_taps, lambda t, d=dataset: ("probe", d, t),
            )  # fmt: skip
            images.append(
                _bars(tmp, f"probe_{dataset.replace('/', '_')}.png", f"{dataset} probe accuracy (%)",
                      with_random, names, probe_taps, lambda t, d=dataset: ("probe", d, t))
            )  # fmt: skip
            sections.append(
                Section(
                    f"Frozen-feature linear probes: {dataset}",
                    text=(
                        protocols.OFFLINE_PROBE_SOURCE
                        if dataset == protocols.OFFLINE_PROBE
                        else f"tfds {dataset} from {protocol['tfds_data_dir']} (prepared; never downloaded)."
                    )
                    + f" Other offline data checked: {protocols.OTHER_OFFLINE_DATA}.",
                    tables=[table],
                )
            )
        table, numbers["pad"] = _summary_table(
            "Proxy A-distance, held-out renders vs real photos (lower = smaller gap)",
            with_random, names, gap_taps, lambda t: ("pad", t),
        )  # fmt: skip
        images.append(
            _bars(tmp, "pad.png", "proxy A-distance per tap", with_random, names, gap_taps,
                  lambda t: ("pad", t))
        )  # fmt: skip
        sections.append(
            Section(
                "Domain gap",
                text=(
                    f"PAD 2(1-2e) of a logistic regression telling {samples['synthetic']} "
                    f"held-out renders from {samples['real']} crops of the embedded photos "
                    f"(split by photo), averaged over {len(protocols.PAD_SPLIT_SEEDS)} seeded "
                    "splits. The real photos are the embedded real domain the DA runs trained "
                    "against (no held-out real photos ship offline)."
                ),
                tables=[table],
            )
        )
        rows = []
        for name in [*depth_runs, protocols.RANDOM_INIT]:
            cells = [
                _cell(mean_std(with_random[name], ("motorcycle", mode, m)))
                for mode in ("raw", "median_scaled")
                for m in DEPTH_COLUMNS
            ]
            rows.append([name, *cells])
        rows.append(
            [f"constant {constant['depth_m']:.2f} m"]
            + [
                f"{constant[mode][m]:.3f}"
                for mode in ("raw", "median_scaled")
                for m in DEPTH_COLUMNS
            ]
        )
        numbers["motorcycle_constant"] = constant
        columns = [f"{mode} {m}" for mode in ("raw", "median") for m in DEPTH_COLUMNS]
        sections.append(
            Section(
                "Metric depth on the Middlebury motorcycle",
                text=(
                    "Runs that trained depth, a random-init model, and a constant predictor "
                    "(the median valid depth of the held-out renders). 'median' = prediction × "
                    "median(gt)/median(pred); a constant becomes median(gt) under that scaling."
                ),
                tables=[Table("Motorcycle depth (abs_rel, rmse lower; delta1 higher)", ["model", *columns], rows)],
            )
        )  # fmt: skip
        table, numbers["synthetic"] = _summary_table(
            "Held-out synthetic metrics (only the tasks a run trained)",
            per_run, list(grid.experiments), SYNTHETIC_COLUMNS,
            lambda c: ("synthetic", *c),
        )  # fmt: skip
        sections.append(Section("Held-out synthetic metrics", tables=[table]))
        run_rows = [
            [r["experiment"], r["seed"], r["status"], r["train_seconds"], r["eval_seconds"]]
            for r in records
        ]
        sections.append(
            Section(
                "Runs",
                tables=[Table("Runs", ["experiment", "seed", "status", "train s", "eval s"], run_rows, digits=0)],
                images=images,
            )
        )  # fmt: skip
        results = {
            "grid": {"name": grid.name, "scale": grid.scale, "seeds": list(grid.seeds),
                     "experiments": list(grid.experiments), "roles": grid.roles},
            "noise_rule": claims.NOISE_RULE,
            "claims": claim_rows,
            "summary": numbers,
            "runs": records,
            "random_init": baselines,
            "protocol": protocol,
            "wall_seconds": wall_seconds,
        }  # fmt: skip
        write_report(tmp, f"Ablation: grid {grid.name}", sections, results)
    return {
        name: os.path.join(os.path.abspath(output_dir), name)
        for name in ("report.html", "report.md", "results.json")
    } | {"claims": claim_rows}


def _probe_taps(records) -> list:
    first = next(iter(records[0]["evaluation"]["probe"].values()))
    return list(first)
