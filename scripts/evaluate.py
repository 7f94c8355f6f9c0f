"""Evaluates a training run with one protocol and writes a report (md + html + results.json).

Protocols: linear_probe (tfds imagenet2012 / places365_small), voc07_cls (fine-tune),
voc07_svm (frozen features), nyud_normals (NYU Depth v2 labeled .mat + splits.mat),
mtl_summary (Δ_MTL over runs' eval.json), and the offline ones that need no download:
qualitative, domain_gap, motorcycle, all_offline (all three). Datasets are never
downloaded: a missing one is reported with the command that prepares it.

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
from mtsyn_tf.evaluation.protocols import PROTOCOLS, run_protocol
from mtsyn_tf.io_utils import check_output_dir

FLAGS = flags.FLAGS
flags.DEFINE_enum("protocol", None, PROTOCOLS, "Evaluation protocol.")
flags.DEFINE_string("workdir", None, "Training run directory (config.json + checkpoints/).")
flags.DEFINE_string(
    "checkpoint", None, "Checkpoint prefix (…/checkpoints/ckpt-N) instead of --workdir."
)
flags.DEFINE_string("output_dir", None, "Report directory (replaced atomically).")
flags.DEFINE_string("expected_preset", None, "Fail unless the run used this preset.")
flags.DEFINE_string("data_dir", None, "tfds data_dir holding prepared datasets.")
flags.DEFINE_string(
    "tfds_name", None, "tfds dataset (linear_probe: imagenet2012, places365_small)."
)
flags.DEFINE_string(
    "synthetic_dir", None, "Synthetic shards with a held-out split (offline protocols)."
)
flags.DEFINE_string("split", "test", "Held-out synthetic split.")
flags.DEFINE_integer("num_synthetic", 32, "Held-out synthetic images for the offline protocols.")
flags.DEFINE_list("compare_workdirs", [], "Other runs to compare, as name=path or path.")
flags.DEFINE_list("single_task_workdirs", [], "mtl_summary: one single-task run per task.")
flags.DEFINE_string("nyud_mat", None, "Path to nyu_depth_v2_labeled.mat (v7.3).")
flags.DEFINE_string("nyud_splits", None, "Path to splits.mat (trainNdxs / testNdxs).")
flags.DEFINE_integer("max_train", None, "Use only the first N training images (smoke runs).")
flags.DEFINE_integer("max_test", None, "Use only the first N test images (smoke runs).")
flags.DEFINE_integer("epochs", 10, "linear_probe epochs.")
flags.DEFINE_integer(
    "steps",
    None,
    "Training steps (voc07_cls: default the reference's 80000; nyud_normals) or steps per "
    "epoch (linear_probe).",
)
flags.DEFINE_integer("batch_size", None, "Batch size (protocol default when unset).")
flags.DEFINE_float("learning_rate", None, "Learning rate (protocol default when unset).")
flags.DEFINE_string("tap", "fc7", "voc07_svm feature tap.")
flags.DEFINE_enum("test_crops", "ten", ["ten", "center"], "voc07_cls test views.")
flags.DEFINE_enum(
    "convention", "voc07_11point", ["voc07_11point", "voc10_area"], "VOC AP definition."
)
flags.DEFINE_string(
    "proposals",
    None,
    "voc*_det: dir of Fast R-CNN's selective_search_data .mat files, or "
    "gt_jitter (smoke tests only: jittered ground-truth boxes).",
)
flags.DEFINE_integer("det_scale", 600, "voc*_det: shorter image side in pixels.")
flags.DEFINE_bool(
    "rescale",
    True,
    "voc07_cls, voc*_det: Krähenbühl data-dependent rescaling of the converted AlexNet "
    "before fine-tuning (the reference's protocol); --norescale skips it.",
)
flags.DEFINE_enum(
    "transfer_input",
    "color",
    ["color", "pretraining"],
    "voc07_cls, voc*_det input: colour images (the reference's fine-tuning) or the run's "
    "own input contract (channel mean for a grey-trained run).",
)
flags.mark_flags_as_required(["protocol", "output_dir"])


def _compare(values):
    if not values:
        return None
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
    check_output_dir(FLAGS.output_dir, "--output_dir")
    options = {
        "expected_preset": FLAGS.expected_preset,
        "data_dir": FLAGS.data_dir,
        "tfds_name": FLAGS.tfds_name,
        "synthetic_dir": FLAGS.synthetic_dir,
        "split": FLAGS.split,
        "num_synthetic": FLAGS.num_synthetic,
        "compare_workdirs": _compare(FLAGS.compare_workdirs),
        "single_task_workdirs": FLAGS.single_task_workdirs,
        "nyud_mat": FLAGS.nyud_mat,
        "nyud_splits": FLAGS.nyud_splits,
        "max_train": FLAGS.max_train,
        "max_test": FLAGS.max_test,
        "epochs": FLAGS.epochs,
        "steps": FLAGS.steps,
        "tap": FLAGS.tap,
        "test_crops": FLAGS.test_crops,
        "convention": FLAGS.convention,
        "proposals": FLAGS.proposals,
        "det_scale": FLAGS.det_scale,
        "rescale": FLAGS.rescale,
        "transfer_input": FLAGS.transfer_input,
    }
    if FLAGS.batch_size:
        options["batch_size"] = FLAGS.batch_size
    if FLAGS.learning_rate:
        options["learning_rate"] = FLAGS.learning_rate
    results = run_protocol(
        FLAGS.protocol, FLAGS.output_dir, FLAGS.workdir or FLAGS.checkpoint, **options
    )
    summary = {
        k: v for k, v in results.items() if k in ("map", "top1", "metrics", "delta_mtl", "seconds")
    }
    print(json.dumps(summary, default=str, indent=1))
    print(f"Report written to {FLAGS.output_dir}/report.md")


if __name__ == "__main__":
    run(main, "evaluate.py")
