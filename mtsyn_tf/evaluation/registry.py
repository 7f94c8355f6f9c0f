"""The table of evaluation protocols, and ``evaluate()``: run some of them, write one report.

``EVALUATORS`` maps each protocol name to its ``Evaluator`` class (one module each under
``mtsyn_tf.evaluation.evaluators``); ``GROUPS`` names sets of them. ``scripts/evaluate.py``
is a command line over ``evaluate``; the ablation study calls it once per run::

    results, sections = evaluate("runs/da", ["all_offline", "linear_probe"], "eval/da",
                                 synthetic_dir="data/synthetic", data_dir="~/tfds")

Every setting is checked against the protocols' typed fields before any model is loaded,
and a report directory is written atomically (complete or untouched).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time

from mtsyn_tf.evaluation.evaluator import EvalRun, Evaluator
from mtsyn_tf.evaluation.evaluators.domain_gap import DomainGapEvaluator
from mtsyn_tf.evaluation.evaluators.fast_rcnn import (
    VOC07DetectionEvaluator,
    VOC12DetectionEvaluator,
)
from mtsyn_tf.evaluation.evaluators.heldout_synthetic import HeldOutSyntheticEvaluator
from mtsyn_tf.evaluation.evaluators.linear_probe import LinearProbeEvaluator
from mtsyn_tf.evaluation.evaluators.motorcycle import MotorcycleEvaluator
from mtsyn_tf.evaluation.evaluators.mtl_summary import MultiTaskSummaryEvaluator
from mtsyn_tf.evaluation.evaluators.nyud_normals import NYUDNormalsEvaluator
from mtsyn_tf.evaluation.evaluators.qualitative import QualitativeEvaluator
from mtsyn_tf.evaluation.evaluators.voc07_finetune import VOC07FineTuneEvaluator
from mtsyn_tf.evaluation.evaluators.voc07_svm import VOC07SVMEvaluator
from mtsyn_tf.evaluation.report import report_directory, write_report
from mtsyn_tf.progress import Progress

EVALUATORS: dict[str, type[Evaluator]] = {
    # Offline: held-out synthetic shards + data that ships with scikit-image / -learn.
    "heldout_synthetic": HeldOutSyntheticEvaluator,
    "qualitative": QualitativeEvaluator,
    "domain_gap": DomainGapEvaluator,
    "motorcycle": MotorcycleEvaluator,
    # Transfer (paper §4.2–4.3); datasets prepared beforehand, never downloaded.
    "linear_probe": LinearProbeEvaluator,
    "voc07_cls": VOC07FineTuneEvaluator,
    "voc07_svm": VOC07SVMEvaluator,
    "voc07_det": VOC07DetectionEvaluator,
    "voc12_det": VOC12DetectionEvaluator,
    "nyud_normals": NYUDNormalsEvaluator,
    # From the runs' own eval.json.
    "mtl_summary": MultiTaskSummaryEvaluator,
}
GROUPS = {"all_offline": ("qualitative", "domain_gap", "motorcycle")}
PROTOCOLS = (*EVALUATORS, *GROUPS)


def expand(protocols) -> list[str]:
    """Protocol names with groups replaced by their members, each once, in order."""
    if isinstance(protocols, str):
        protocols = [protocols]
    names = []
    for name in protocols:
        if name not in EVALUATORS and name not in GROUPS:
            raise ValueError(f"Unknown protocol. Expected one of {PROTOCOLS}. Received: {name!r}")
        names += [n for n in GROUPS.get(name, (name,)) if n not in names]
    if not names:
        raise ValueError(
            f"No protocol given. Expected some of {PROTOCOLS}. Received: {protocols!r}"
        )
    return names


def make_evaluator(name: str, **config) -> Evaluator:
    """``EVALUATORS[name](**config)``; an unknown name or setting is one ValueError line."""
    if name not in EVALUATORS:
        raise ValueError(
            f"Unknown protocol. Expected one of {tuple(EVALUATORS)}. Received: {name!r}"
        )
    cls = EVALUATORS[name]
    unknown = sorted(set(config) - set(cls.setting_names()))
    if unknown:
        raise ValueError(
            f"Protocol {name!r} takes the settings {cls.setting_names()}. "
            f"Received: {', '.join(f'{k}={config[k]!r}' for k in unknown)}"
        )
    return cls(**config)


def make_evaluators(protocols, config: dict) -> dict[str, Evaluator]:
    """One evaluator per protocol. ``config``: settings shared by every protocol that takes
    them, plus ``{protocol: {setting: value}}`` for one protocol only (wins over shared)."""
    names = expand(protocols)
    own = {n: config[n] for n in names if isinstance(config.get(n), dict)}
    shared = {k: v for k, v in config.items() if k not in own}
    accepted = {k for n in names for k in EVALUATORS[n].setting_names()}
    unused = sorted(set(shared) - accepted)
    if unused:
        raise ValueError(
            f"No protocol of {names} takes {unused} (they take {sorted(accepted)}). "
            f"Received: {', '.join(f'{k}={shared[k]!r}' for k in unused)}"
        )
    evaluators = {}
    for n in names:
        settings = {k: v for k, v in shared.items() if k in EVALUATORS[n].setting_names()}
        evaluators[n] = make_evaluator(n, **{**settings, **own.get(n, {})})
    return evaluators


def _run_all(evaluators: dict, target: EvalRun, report_dir: str):
    results, sections, seconds = {"protocols": list(evaluators)}, [], {}
    progress = Progress("evaluate", len(evaluators), "protocols", interval_s=0.0)
    for name, evaluator in evaluators.items():
        start = time.perf_counter()
        results[name], own_sections = evaluator.run(target, report_dir)
        sections += own_sections
        seconds[name] = round(time.perf_counter() - start, 1)
        progress.update()  # one line per protocol: done/total, elapsed, ETA
    results["run"] = target.record()
    results["seconds"] = seconds
    return results, sections


def evaluate(run, protocols, output_dir: str | None = None, *, expected_preset=None,
             title: str | None = None, **config) -> tuple[dict, list]:  # fmt: skip
    """Runs ``protocols`` on ``run`` and (given ``output_dir``) writes one report there.

    Args:
        run: a training workdir or checkpoint prefix, an ``EvalRun``, or a MultiTaskNet
            (colour input contract; protocols that read run files then fail).
        protocols: names (or one name) from ``PROTOCOLS``; groups expand to their members.
        output_dir: report directory (``report.md``, ``report.html``, ``results.json`` and
            figures), replaced atomically; None: nothing is kept, and the sections come
            back without their figures.
        expected_preset: fail, before evaluating anything, unless the run used this preset.
        **config: settings, each passed to every chosen protocol that takes it (one no
            chosen protocol takes is an error), or ``<protocol>={...}`` for one protocol.

    Returns:
        ``(results, sections)``: results hold ``protocols``, ``run`` (name, path,
        checkpoint, preset), ``seconds`` per protocol and each protocol's numbers under its
        name; sections are the report's, in protocol order.
    """
    evaluators = make_evaluators(protocols, config)
    target = EvalRun.of(run, expected_preset)
    if expected_preset is not None:
        target.info  # noqa: B018 -- loads now: a run of another preset fails before any work
    if output_dir is None:
        with tempfile.TemporaryDirectory() as tmp:
            results, sections = _run_all(evaluators, target, tmp)
        return results, [dataclasses.replace(s, images=[]) for s in sections]
    if title is None and len(evaluators) == 1:
        title = f"{next(iter(evaluators.values())).title}: {target.name}"
    title = title or f"Evaluation of {target.name}: {', '.join(evaluators)}"
    with report_directory(output_dir) as tmp:
        results, sections = _run_all(evaluators, target, tmp)
        write_report(tmp, title, sections, results)
    return results, sections
