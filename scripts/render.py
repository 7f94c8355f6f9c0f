"""Renders a procedural synthetic dataset (TFRecord shards + manifest + preview grid).

Example (the demo's setting: 224 images at 227x227, 4 spp denoised, on 2 cores)::

    python scripts/render.py --num_scenes=192 --num_test_scenes=32 --resolution=227 \
        --spp=4 --denoise=fast --workers=2 --output_dir=workspace/synthetic

Nothing heavy is imported at module level: worker processes are spawned and re-import
this file, and DrJit must never be imported after TensorFlow in one process.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_scenes", 180, "Training scenes (ids 0..N-1).")
flags.DEFINE_integer("num_test_scenes", 20, "Held-out test scenes (ids from 1,000,000).")
flags.DEFINE_integer("views_per_scene", 1, "Camera views rendered per scene.")
flags.DEFINE_integer("resolution", 227, "Square image size in pixels.")
flags.DEFINE_integer("spp", 4, "Path-tracing samples per pixel (labels always use 1 exact sample).")
flags.DEFINE_enum(
    "denoise",
    "fast",
    ["off", "fast", "balanced", "high"],
    "Intel Open Image Denoise quality for the RGB (needs pyoidn; 'off' keeps the noise).",
)
flags.DEFINE_integer("max_depth", 4, "Maximum path length (bounces + 1).")
flags.DEFINE_integer("seed", 0, "Global seed: (seed, scene id) fully determines a scene.")
flags.DEFINE_string("output_dir", None, "Where shards, manifest.json and sample_grid.png go.")
flags.DEFINE_integer("workers", max(1, os.cpu_count() or 1), "Render processes (local runner).")
flags.DEFINE_integer("images_per_shard", 256, "Images per TFRecord shard.")
flags.DEFINE_enum("runner", "local", ["local", "beam"], "local multiprocessing or Apache Beam.")
flags.DEFINE_enum("variant", "auto", ["auto", "scalar_rgb", "llvm_ad_rgb"], "Mitsuba variant.")
flags.DEFINE_bool("overwrite", False, "Replace an existing non-empty output_dir.")
flags.DEFINE_integer("grid_samples", 8, "Training samples shown in sample_grid.png (0: none).")
flags.mark_flag_as_required("output_dir")


def _write_grid(samples, output_dir: str) -> str:
    from mtsyn_tf.data.sample_grid import write_sample_grid

    return write_sample_grid(samples, os.path.join(output_dir, "sample_grid.png"))


def main(argv):
    del argv
    from mtsyn_tf.render import generate

    try:
        generate.prepare_output_dir(FLAGS.output_dir, FLAGS.overwrite)
    except ValueError as err:
        sys.exit(f"render.py: {err}")
    config = generate.RenderConfig(
        resolution=FLAGS.resolution,
        spp=FLAGS.spp,
        max_depth=FLAGS.max_depth,
        seed=FLAGS.seed,
        views_per_scene=FLAGS.views_per_scene,
        variant=FLAGS.variant,
        denoise=FLAGS.denoise,
    )
    if FLAGS.runner == "local":
        summary = generate.generate_dataset(
            FLAGS.output_dir,
            FLAGS.num_scenes,
            FLAGS.num_test_scenes,
            config=config,
            workers=FLAGS.workers,
            images_per_shard=FLAGS.images_per_shard,
            keep_samples=FLAGS.grid_samples,
        )
        samples = summary.pop("samples")
    else:
        from mtsyn_tf.render import beam_pipeline

        summary = beam_pipeline.run_beam(
            FLAGS.output_dir,
            FLAGS.num_scenes,
            FLAGS.num_test_scenes,
            config=config,
            images_per_shard=FLAGS.images_per_shard,
        )
        samples = _first_samples(FLAGS.output_dir, FLAGS.grid_samples)
    if samples:
        logging.info("Wrote preview grid %s", _write_grid(samples, FLAGS.output_dir))
    print(json.dumps({k: v for k, v in summary.items()}, indent=2, default=str))


def _first_samples(data_dir: str, count: int) -> list[dict]:
    """Decodes the first ``count`` training records back to numpy (Beam runner preview)."""
    if count <= 0:
        return []
    import tensorflow as tf

    from mtsyn_tf.data import schema, shards

    paths = (
        shards.list_shards(data_dir, "train")
        if "train" in shards.read_manifest(data_dir)["splits"]
        else []
    )
    records = tf.data.TFRecordDataset(paths).take(count) if paths else []
    return [schema.decode_synthetic_numpy(r.numpy()) for r in records]


if __name__ == "__main__":
    app.run(main)
