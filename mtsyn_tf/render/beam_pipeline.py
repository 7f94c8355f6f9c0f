"""The same scene generator as an Apache Beam pipeline (DirectRunner, Flink, Spark, Dataflow).

``Create(scene ids) → Render → Encode → WriteToTFRecord`` per split; each worker renders
whole scenes. Shards are named ``<split>-SSSSS-of-NNNNN.tfrecord`` exactly as
:func:`mtsyn_tf.data.shards.shard_name` names them, and after the pipeline finishes the
driver writes ``manifest.json`` (record counts and sha256 per shard), so readers
(``list_shards``, ``verify_shards``, the training pipeline) cannot tell the two
generators apart. The manifest is written atomically and only after every shard exists.

On a distributed runner ``output_dir`` must be a shared filesystem path that the driver
can also read (Beam's own filesystems handle ``gs://``; the manifest step uses
``tf.io.gfile`` for the same reason).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os

import apache_beam as beam
from absl import logging

from mtsyn_tf.render import generate
from mtsyn_tf.render import labels as labels_lib


class RenderSceneFn(beam.DoFn):
    """scene id → rendered samples.

    Beam workers also run the TensorFlow encoder, so rendering goes through
    :func:`mitsuba_backend.render_scene`, which moves into a helper process whenever
    TensorFlow was loaded first (DrJit after TF crashes the process).
    """

    def __init__(self, config: generate.RenderConfig):
        self.config = config

    def process(self, scene_id):
        yield from generate.render_one(scene_id, self.config)


def _encode(sample: dict) -> bytes:
    from mtsyn_tf.data import schema

    return schema.encode_synthetic(sample)


def add_split(
    pipeline, output_dir: str, split: str, scene_ids, config: generate.RenderConfig, num_shards: int
):
    """Adds one split's render → encode → write branch to ``pipeline``."""
    return (
        pipeline
        | f"{split}/SceneIds" >> beam.Create(list(scene_ids))
        | f"{split}/Reshuffle" >> beam.Reshuffle()  # spread scenes over workers
        | f"{split}/Render" >> beam.ParDo(RenderSceneFn(config))
        | f"{split}/Encode" >> beam.Map(_encode)
        | f"{split}/Write"
        >> beam.io.WriteToTFRecord(
            os.path.join(output_dir, split),
            file_name_suffix=".tfrecord",
            num_shards=num_shards,
            shard_name_template="-SSSSS-of-NNNNN",
        )
    )


def _count_and_hash(path: str) -> tuple[int, str]:
    import tensorflow as tf

    count = sum(1 for _ in tf.data.TFRecordDataset(path))
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return count, digest.hexdigest()


def write_manifest(output_dir: str, split_shards: dict[str, int]) -> dict:
    """Writes ``manifest.json`` for shards Beam produced, in the shards-module format."""
    import tensorflow as tf

    from mtsyn_tf.data import schema, shards

    manifest = {
        "schema_version": schema.SCHEMA_VERSION,
        "kind": "synthetic",
        "source": labels_lib.SOURCE,
        "splits": {},
    }
    for split, num_shards in split_shards.items():
        entries = []
        for index in range(num_shards):
            name = shards.shard_name(split, index, num_shards)
            path = os.path.join(output_dir, name)
            if not tf.io.gfile.exists(path):
                raise ValueError(f"Beam did not produce the expected shard {path!r}.")
            count, sha = _count_and_hash(path)
            entries.append({"name": name, "num_records": count, "sha256": sha})
        manifest["splits"][split] = {
            "num_records": sum(e["num_records"] for e in entries),
            "shards": entries,
        }
    path = os.path.join(output_dir, shards.MANIFEST_NAME)
    tmp = f"{path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tf.io.gfile.rename(tmp, path, overwrite=True)
    return manifest


def run_beam(
    output_dir: str,
    num_scenes: int,
    num_test_scenes: int = 0,
    config: generate.RenderConfig | None = None,
    images_per_shard: int = generate.DEFAULT_IMAGES_PER_SHARD,
    pipeline_options=None,
) -> dict:
    """Runs the pipeline to completion and writes the manifest; returns a summary dict."""
    import time

    from apache_beam.options.pipeline_options import PipelineOptions

    from mtsyn_tf.render import variant as variant_lib

    config = config or generate.RenderConfig()
    if config.variant == "auto":
        # Resolve on the driver; workers on other machines should pass an explicit variant.
        config = dataclasses.replace(config, variant=variant_lib.resolve_variant("auto"))
    splits = generate.split_scene_ids(num_scenes, num_test_scenes)
    if not splits:
        raise ValueError("Nothing to render: num_scenes and num_test_scenes are both 0.")
    num_shards = {
        split: max(
            1, min(len(ids), math.ceil(len(ids) * config.views_per_scene / images_per_shard))
        )
        for split, ids in splits.items()
    }
    os.makedirs(output_dir, exist_ok=True)
    start = time.perf_counter()
    options = pipeline_options or PipelineOptions(runner="DirectRunner")
    with beam.Pipeline(options=options) as p:
        for split, ids in splits.items():
            add_split(p, output_dir, split, ids, config, num_shards[split])
    manifest = write_manifest(output_dir, num_shards)
    seconds = time.perf_counter() - start
    images = sum(s["num_records"] for s in manifest["splits"].values())
    logging.info(
        "Beam rendered %d images in %.1f s (%.2f images/s).", images, seconds, images / seconds
    )
    return {
        "variant": config.variant,
        "splits": {k: {"images": v["num_records"]} for k, v in manifest["splits"].items()},
        "images": images,
        "seconds": seconds,
        "images_per_s": images / seconds,
    }
