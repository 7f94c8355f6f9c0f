"""The paper's ablation table (Table 4) as one command: experiments × seeds, one report.

  python scripts/ablate.py --workspace=workspace                 # demo grid, ≤ 1 h on 2 cores
  python scripts/ablate.py --grid=paper --workspace=/data/ws \\
      --synthetic_dir=/data/renders --places365_data_dir=/data/tfds \\
      --tfds_data_dir=/data/tfds                                   # GPU recipe (README)

Every (experiment, seed) trains into <workspace>/ablation/<grid>/<experiment>/seed<k> and
is evaluated with the same protocols; finished runs are reused, a killed grid continues.
The report: <workspace>/ablation/<grid>/report/report.{html,md} + results.json.
"""

from __future__ import annotations

from absl import flags, logging

from mtsyn_tf.cli import run

FLAGS = flags.FLAGS
flags.DEFINE_string("grid", "demo", "Grid name: demo (CPU, embedded data) or paper (GPU).")
flags.DEFINE_string("workspace", "workspace", "Workspace root (see WORKSPACE.md).")
flags.DEFINE_list("seeds", [], "Seeds (default: the grid's, 0,1,2).")
flags.DEFINE_list("experiments", [], "A subset of the grid's experiments (default: all).")
flags.DEFINE_multi_string(
    "set", [], "FIELD=VALUE RunConfig override applied to every run alike (e.g. epochs=1)."
)
flags.DEFINE_string("synthetic_dir", None, "Synthetic shards (default: demo renders / config).")
flags.DEFINE_string("real_source", None, "Real domain: embedded, places365 or a folder.")
flags.DEFINE_string("places365_data_dir", None, "tfds data dir holding places365_small.")
flags.DEFINE_string("tfds_data_dir", None, "Prepared tfds data dir: adds VOC07/ImageNet probes.")
flags.DEFINE_list(
    "tfds_probes", ["voc/2007", "imagenet2012"], "tfds probe sets (with --tfds_data_dir)."
)
flags.DEFINE_integer("num_synthetic", 64, "Held-out renders for the domain gap.")
flags.DEFINE_float(
    "estimate_tflops",
    None,
    "Only print the grid's training FLOP and device-hours at this sustained TFLOP/s per "
    "device (e.g. 400 for an H100 at 40%% of its dense bf16 peak), then exit.",
)


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected positional arguments. Received: {argv[1:]}")
    from mtsyn_tf.ablation.grid import get_grid

    budget = {}
    for item in FLAGS.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects FIELD=VALUE. Received: --set={item!r}")
        budget[key.strip()] = value.strip()
    grid = get_grid(FLAGS.grid, seeds=FLAGS.seeds, experiments=FLAGS.experiments, budget=budget)
    if FLAGS.num_synthetic < 4:
        raise ValueError(f"--num_synthetic must be >= 4. Received: {FLAGS.num_synthetic}")
    data = {
        k: getattr(FLAGS, k)
        for k in ("synthetic_dir", "real_source", "places365_data_dir")
        if getattr(FLAGS, k) is not None
    }
    if FLAGS.estimate_tflops is not None:
        from mtsyn_tf.ablation.grid import estimate

        est = estimate(grid, FLAGS.workspace, data, FLAGS.estimate_tflops)
        for name, pflop in est["pflop_per_run"].items():
            print(f"{name}: {pflop:.0f} PFLOP per run")
        print(
            f"{est['runs']} runs, {est['total_pflop']:.0f} PFLOP, {est['device_hours']:.1f} "
            f"device-hours at {est['sustained_tflops']:g} TFLOP/s sustained (training only)"
        )
        return
    from mtsyn_tf.ablation.runner import run_grid  # TensorFlow loads after the render

    result = run_grid(
        grid,
        FLAGS.workspace,
        data=data or None,
        tfds_data_dir=FLAGS.tfds_data_dir,
        tfds_probes=FLAGS.tfds_probes if FLAGS.tfds_data_dir else (),
        num_synthetic=FLAGS.num_synthetic,
    )
    for row in result["report"]["claims"]:
        print(
            f"{row['verdict']:>18} | {row['claim']} | {row['measure']} | Δ={row['difference']:+.3f} ({row['noise_test']})"
        )
    logging.info("Grid done in %.1f min.", result["wall_seconds"] / 60)
    print(f"Report: {result['report']['report.html']}")


if __name__ == "__main__":
    run(main, "ablate.py")
