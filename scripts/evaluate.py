"""Evaluates a training run with one protocol and writes a report (md + html + results.json).

A command line over ``mtsyn_tf.evaluation.registry`` (the table of protocols): every
protocol flag below is a setting of the same name, passed only when given, so unset ones
keep the protocol's default; a flag the chosen protocol does not take is an error.
Protocols: linear_probe (tfds imagenet2012 / places365_small), voc07_cls (fine-tune),
voc07_svm (frozen features), voc07_det / voc12_det (Fast R-CNN), nyud_normals (NYU Depth
v2 labeled .mat + splits.mat), mtl_summary (Δ_MTL over runs' eval.json), and the offline
ones that need no download: qualitative, domain_gap, motorcycle, all_offline (all three).
Datasets are never downloaded: a missing one is reported with the command that prepares it.

Examples:
  python scripts/evaluate.py --protocol=all_offline --workdir=runs/da \
      --compare_workdirs=no_da=runs/no_da --synthetic_dir=data/synthetic --output_dir=eval/da
  python scripts/evaluate.py --protocol=voc07_svm --workdir=runs/da --data_dir=~/tfds \
      --output_dir=eval/voc_svm
  python scripts/evaluate.py --protocol=mtl_summary --workdir=runs/mt \
      --single_task_workdirs=runs/depth,runs/normals,runs/edge --output_dir=eval/mtl
"""

from __future__ import annotations

import json

from absl import flags

from mtsyn_tf.cli import run
from mtsyn_tf.evaluation.registry import PROTOCOLS, evaluate
from mtsyn_tf.io_utils import check_output_dir

FLAGS = flags.FLAGS
flags.DEFINE_enum("protocol", None, PROTOCOLS, "Evaluation protocol.")
flags.DEFINE_string("workdir", None, "Training run directory (config.json + checkpoints/).")
flags.DEFINE_string(
    "checkpoint", None, "Checkpoint prefix (…/checkpoints/ckpt-N) instead of --workdir."
)
flags.DEFINE_string("output_dir", None, "Report directory (replaced atomically).")
flags.DEFINE_string("expected_preset", None, "Fail unless the run used this preset.")
# Protocol settings (defaults: the protocol's, see mtsyn_tf/evaluation/evaluators/).
flags.DEFINE_string("data_dir", None, "tfds data_dir holding prepared datasets.")
flags.DEFINE_string(
    "tfds_name", None, "tfds dataset (linear_probe: imagenet2012, places365_small)."
)
flags.DEFINE_string(
    "synthetic_dir", None, "Synthetic shards with a held-out split (offline protocols)."
)
flags.DEFINE_string("split", None, "Held-out synthetic split (default test).")
flags.DEFINE_integer("num_synthetic", None, "Held-out synthetic images (default 32).")
flags.DEFINE_list("compare_workdirs", None, "Other runs to compare, as name=path or path.")
flags.DEFINE_list("single_task_workdirs", None, "mtl_summary: one single-task run per task.")
flags.DEFINE_string("nyud_mat", None, "Path to nyu_depth_v2_labeled.mat (v7.3).")
flags.DEFINE_string("nyud_splits", None, "Path to splits.mat (trainNdxs / testNdxs).")
flags.DEFINE_integer("max_train", None, "Use only the first N training images (smoke runs).")
flags.DEFINE_integer("max_test", None, "Use only the first N test images (smoke runs).")
flags.DEFINE_integer("epochs", None, "linear_probe epochs (default 10).")
flags.DEFINE_integer(
    "steps",
    None,
    "Training steps (voc07_cls: default the reference's 80000; voc*_det 40000; "
    "nyud_normals 1000) or steps per epoch (linear_probe).",
)
flags.DEFINE_integer("batch_size", None, "Batch size (protocol default when unset).")
flags.DEFINE_float("learning_rate", None, "Learning rate (protocol default when unset).")
flags.DEFINE_string("tap", None, "voc07_svm feature tap (default fc7).")
flags.DEFINE_enum("test_crops", None, ["ten", "center"], "voc07_cls test views (default ten).")
flags.DEFINE_enum(
    "convention", None, ["voc07_11point", "voc10_area"], "VOC AP definition (default 11-point)."
)
flags.DEFINE_string(
    "proposals",
    None,
    "voc*_det: dir of Fast R-CNN's selective_search_data .mat files, or "
    "gt_jitter (smoke tests only: jittered ground-truth boxes).",
)
flags.DEFINE_integer("det_scale", None, "voc*_det: shorter image side in pixels (default 600).")
flags.DEFINE_bool(
    "rescale",
    None,
    "voc07_cls, voc*_det: Krähenbühl data-dependent rescaling of the converted AlexNet "
    "before fine-tuning (default: on, the reference's protocol); --norescale skips it.",
)
flags.DEFINE_enum(
    "transfer_input",
    None,
    ["color", "pretraining"],
    "voc07_cls, voc*_det input: colour images (default, the reference's fine-tuning) or the "
    "run's own input contract (channel mean for a grey-trained run).",
)
flags.mark_flags_as_required(["protocol", "output_dir"])

SETTING_FLAGS = (
    "data_dir", "tfds_name", "synthetic_dir", "split", "num_synthetic", "compare_workdirs",
    "single_task_workdirs", "nyud_mat", "nyud_splits", "max_train", "max_test", "epochs",
    "steps", "batch_size", "learning_rate", "tap", "test_crops", "convention", "proposals",
    "det_scale", "rescale", "transfer_input",
)  # fmt: skip


def _compare(values):
    pairs = [v.split("=", 1) if "=" in v else (None, v) for v in values]
    if all(name is None for name, _ in pairs):
        return [path for _, path in pairs]
    if any(name is None for name, _ in pairs):
        raise ValueError(f"--compare_workdirs: use name=path for all or none. Received: {values}")
    return dict(pairs)


def main(argv):
    del argv
    if bool(FLAGS.workdir) == bool(FLAGS.checkpoint) and FLAGS.protocol != "mtl_summary":
        raise ValueError(
            "Pass exactly one of --workdir and --checkpoint. Received: "
            f"--workdir={FLAGS.workdir!r}, --checkpoint={FLAGS.checkpoint!r}"
        )
    if not (FLAGS.workdir or FLAGS.checkpoint):
        raise ValueError(f"Protocol {FLAGS.protocol!r} needs --workdir. Received: --workdir=None")
    check_output_dir(FLAGS.output_dir, "--output_dir")
    config = {name: FLAGS[name].value for name in SETTING_FLAGS if FLAGS[name].present}
    if "compare_workdirs" in config:
        config["compare_workdirs"] = _compare(config["compare_workdirs"])
    results, _ = evaluate(
        FLAGS.workdir or FLAGS.checkpoint,
        [FLAGS.protocol],
        FLAGS.output_dir,
        expected_preset=FLAGS.expected_preset,
        **config,
    )
    keys = ("map", "top1", "metrics", "delta_mtl")
    summary = {
        name: {k: v for k, v in results[name].items() if k in keys} for name in results["protocols"]
    }
    print(json.dumps({**summary, "seconds": results["seconds"]}, default=str, indent=1))
    print(f"Report written to {FLAGS.output_dir}/report.md")


if __name__ == "__main__":
    run(main, "evaluate.py")
