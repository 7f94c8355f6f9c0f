"""One entry point per evaluation protocol, each ending in a complete report directory.

``run_protocol(name, ...)`` is what ``scripts/evaluate.py`` calls. Every protocol loads
what it needs, fails with a ValueError naming the missing file / dataset / mismatch
before anything is written, and writes ``report.md``, ``report.html`` and
``results.json`` into ``output_dir`` atomically.
"""

from __future__ import annotations

from mtsyn_tf.evaluation import offline
from mtsyn_tf.evaluation.loading import load_run_model
from mtsyn_tf.evaluation.report import Section, Table, report_directory, write_report

OFFLINE_PROTOCOLS = {
    "qualitative": ("qualitative",),
    "domain_gap": ("domain_gap",),
    "motorcycle": ("motorcycle",),
    "all_offline": offline.PARTS,
}
PROTOCOLS = (
    "linear_probe", "voc07_cls", "voc07_svm", "voc07_det", "voc12_det", "nyud_normals",
    "mtl_summary", *OFFLINE_PROTOCOLS,
)  # fmt: skip


def _write(output_dir: str, title: str, sections, results: dict) -> dict:
    with report_directory(output_dir) as tmp:
        write_report(tmp, title, sections, results)
    return results


def _metric_table(title: str, metrics: dict, keys) -> Table:
    return Table(title, ["metric", "value"], [[k, metrics[k]] for k in keys if k in metrics])


def _transfer_contract(info: dict, options: dict):
    """Input contract of the VOC fine-tuning protocols: colour, as the reference fine-tunes
    (whatever the pretraining input); ``transfer_input="pretraining"`` feeds the run's own."""
    from mtsyn_tf.models.preprocessor import InputContract

    choice = options.get("transfer_input") or "color"
    if choice not in ("color", "pretraining"):
        raise ValueError(
            f"transfer_input must be 'color' or 'pretraining'. Received: transfer_input={choice!r}"
        )
    return info["input_contract"] if choice == "pretraining" else InputContract("rgb")


def run_protocol(protocol: str, output_dir: str, workdir: str | None = None, **options) -> dict:
    """Runs ``protocol`` (one of ``PROTOCOLS``) and writes its report; returns its numbers.

    Options by protocol: ``synthetic_dir``, ``compare_workdirs``, ``split``,
    ``num_synthetic`` (offline); ``data_dir``, ``tfds_name``, ``epochs``, ``steps``,
    ``batch_size``, ``learning_rate`` (linear_probe, voc07_*); ``tap``, ``test_crops``,
    ``convention`` (voc07_*); ``rescale`` (voc07_cls, voc*_det: Krähenbühl rescaling
    before fine-tuning, default True) and ``transfer_input`` ("color", default, or
    "pretraining": the run's own input contract) for the fine-tuning protocols; ``nyud_mat``, ``nyud_splits``, ``max_train``, ``max_test``
    (nyud_normals); ``proposals``, ``det_scale`` (voc07_det / voc12_det, with ``steps``,
    ``batch_size`` = images per batch, ``learning_rate``, ``convention``, ``max_train``,
    ``max_test``); ``single_task_workdirs`` (mtl_summary); ``expected_preset`` (any
    protocol that loads a model: a run of another preset raises).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"Unknown protocol. Expected one of {PROTOCOLS}. Received: {protocol!r}")
    if workdir is None:
        raise ValueError(f"Protocol {protocol!r} needs --workdir (or --checkpoint).")
    if protocol in OFFLINE_PROTOCOLS:
        return offline.offline_report(
            workdir, options.get("synthetic_dir"), output_dir,
            compare_workdirs=options.get("compare_workdirs"), split=options.get("split", "test"),
            num_synthetic=options.get("num_synthetic", 32), parts=OFFLINE_PROTOCOLS[protocol],
            expected_preset=options.get("expected_preset"),
        )  # fmt: skip
    if protocol == "mtl_summary":
        from mtsyn_tf.evaluation.multitask_summary import mtl_summary, mtl_table

        summary = mtl_summary(workdir, options.get("single_task_workdirs") or ())
        return _write(output_dir, "Multi-task vs single-task", [Section("Δ_MTL", tables=[mtl_table(summary)])], summary)  # fmt: skip
    model, info = load_run_model(workdir, expected_preset=options.get("expected_preset"))
    grayscale = info["grayscale"]
    run = {"checkpoint": info["checkpoint"], "preset": info["preset"]}
    data_dir = options.get("data_dir")
    if protocol == "linear_probe":
        from mtsyn_tf.evaluation.linear_probe import linear_probe_tfds

        name = options.get("tfds_name") or "imagenet2012"
        r = linear_probe_tfds(
            model, name, data_dir, batch_size=options.get("batch_size", 64),
            epochs=options.get("epochs", 10), steps_per_epoch=options.get("steps"),
            grayscale=grayscale, learning_rate=options.get("learning_rate", 0.01),
        )  # fmt: skip
        table = Table(f"Linear probes on {name} ({r['test_split']}), top-1 %", ["tap", "dims", "top-1 %"],
                      [[t, r["dims"][t], v] for t, v in r["top1"].items()], digits=2)  # fmt: skip
        return _write(output_dir, "Linear probes", [Section("Linear probes", tables=[table])], {**r, "run": run})  # fmt: skip
    if protocol in ("voc07_cls", "voc07_svm"):
        from mtsyn_tf.evaluation import voc_classification as voc

        name = options.get("tfds_name") or "voc/2007"
        convention = options.get("convention", "voc07_11point")
        if protocol == "voc07_cls":
            r = voc.finetune_voc07(
                model, name, data_dir, steps=options.get("steps"),
                batch_size=options.get("batch_size"), learning_rate=options.get("learning_rate"),
                rescale=options.get("rescale", True), test_crops=options.get("test_crops", "ten"),
                grayscale=_transfer_contract(info, options), convention=convention,
            )  # fmt: skip
        else:
            r = voc.voc07_svm(model, name, data_dir, tap=options.get("tap", "fc7"), grayscale=grayscale,
                              convention=convention)  # fmt: skip
        table = Table(f"{name} classification ({r['protocol']}), AP convention {r['convention']}",
                      ["", "mAP"], [["all classes", r["map"]]])  # fmt: skip
        return _write(output_dir, "VOC07 classification", [Section(r["protocol"], tables=[table])], {**r, "run": run})  # fmt: skip
    if protocol in ("voc07_det", "voc12_det"):
        from mtsyn_tf.evaluation.fast_rcnn import detection_report

        contract = _transfer_contract(info, options)
        return _write(output_dir, *detection_report(model, protocol, contract, options, run))
    from mtsyn_tf.evaluation.nyud_normals import nyud_normals

    for key in ("nyud_mat", "nyud_splits"):
        if not options.get(key):
            raise ValueError(f"nyud_normals needs --{key} (nyu_depth_v2_labeled.mat / splits.mat).")
    r = nyud_normals(
        model, options["nyud_mat"], options["nyud_splits"], steps=options.get("steps") or 1000,
        batch_size=options.get("batch_size", 8), learning_rate=options.get("learning_rate", 1e-4),
        grayscale=grayscale, max_train=options.get("max_train"), max_test=options.get("max_test"),
    )  # fmt: skip
    keys = ("mean", "median", "pct_11_25", "pct_22_5", "pct_30")
    table = _metric_table("NYUD v2 test normals (degrees / %)", r["metrics"], keys)
    text = f"Ground truth: {r['ground_truth']}. Evaluation: {r['evaluation']}."
    return _write(output_dir, "NYUD v2 surface normals", [Section("NYUD normals", text, [table])], {**r, "run": run})  # fmt: skip
