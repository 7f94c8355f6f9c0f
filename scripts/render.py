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

from absl import flags, logging

from mtsyn_tf.cli import run
from mtsyn_tf.io_utils import atomic_directory, check_output_dir

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


def _check_flags() -> None:
    """Every flag checked before anything is created on disk."""
    from mtsyn_tf.render import generate

    for name in ("workers", "images_per_shard"):
        if getattr(FLAGS, name) < 1:
            raise ValueError(f"--{name} must be >= 1. Received: --{name}={getattr(FLAGS, name)}")
    if FLAGS.grid_samples < 0:
        raise ValueError(
            f"--grid_samples must be >= 0. Received: --grid_samples={FLAGS.grid_samples}"
        )
    if not generate.split_scene_ids(FLAGS.num_scenes, FLAGS.num_test_scenes):
        raise ValueError(
            "Nothing to render: --num_scenes and --num_test_scenes are both 0. "
            "Received: --num_scenes=0, --num_test_scenes=0"
        )
    path = FLAGS.output_dir
    check_output_dir(path, "--output_dir")
    if os.path.isdir(path) and os.listdir(path) and not FLAGS.overwrite:
        raise ValueError(
            f"--output_dir is not empty: {path!r}. Pass --overwrite to replace its contents."
        )


def main(argv):
    del argv
    from mtsyn_tf.render import generate

    _check_flags()
    try:
        config = generate.RenderConfig(
            resolution=FLAGS.resolution,
            spp=FLAGS.spp,
            max_depth=FLAGS.max_depth,
            seed=FLAGS.seed,
            views_per_scene=FLAGS.views_per_scene,
            variant=FLAGS.variant,
            denoise=FLAGS.denoise,
        )
    except ValueError as err:  # RenderConfig names its fields; say which flag that is.
        raise ValueError(f"Bad render flag: {err}".replace("RenderConfig.", "--")) from None
    # Rendered into a hidden sibling that replaces --output_dir only once complete: a
    # failure (disk full, a crashed worker) leaves the previous contents, or nothing.
    with atomic_directory(FLAGS.output_dir, overwrite=True) as tmp:
        summary, samples = _render(generate, config, tmp)
        if samples:
            _write_grid(samples, tmp)
    if samples:
        logging.info("Wrote preview grid %s", os.path.join(FLAGS.output_dir, "sample_grid.png"))
    # The summary's paths point into the temporary directory that is now --output_dir.
    text = json.dumps(summary, indent=2, default=str)
    print(text.replace(os.path.abspath(tmp), os.path.abspath(FLAGS.output_dir)))


def _render(generate, config, output_dir: str) -> tuple[dict, list]:
    if FLAGS.runner == "local":
        summary = generate.generate_dataset(
            output_dir,
            FLAGS.num_scenes,
            FLAGS.num_test_scenes,
            config=config,
            workers=FLAGS.workers,
            images_per_shard=FLAGS.images_per_shard,
            keep_samples=FLAGS.grid_samples,
        )
        return summary, summary.pop("samples")
    from mtsyn_tf.render import beam_pipeline

    summary = beam_pipeline.run_beam(
        output_dir,
        FLAGS.num_scenes,
        FLAGS.num_test_scenes,
        config=config,
        images_per_shard=FLAGS.images_per_shard,
    )
    return summary, _first_samples(output_dir, FLAGS.grid_samples)


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
    run(main, "render.py")
