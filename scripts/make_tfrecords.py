"""Converts a dataset into mtsyn_tf TFRecord shards + manifest.json + a sample grid.

Examples::

    python scripts/make_tfrecords.py --source=hypersim --manual_dir=/data/hypersim \
        --output_dir=workspace/data/hypersim --split=train,val --num_shards=64
    python scripts/make_tfrecords.py --source=scenenet_rgbd --manual_dir=/data/scenenet \
        --output_dir=workspace/data/scenenet --split=val --max_examples=1000
    python scripts/make_tfrecords.py --source=embedded_real --output_dir=workspace/data/real
    python scripts/make_tfrecords.py --source=real_folder --input_dir=~/photos \
        --output_dir=workspace/data/photos --image_format=jpeg
    python scripts/make_tfrecords.py --source=places365 --places365_data_dir=~/tfds \
        --output_dir=workspace/data/places365 --num_shards=256

Synthetic sources write kind="synthetic" shards read by ``make_training_dataset``'s
``synthetic_dir``; real sources write kind="real" shards usable as its ``real_source``.
"""

from __future__ import annotations

import itertools
import json
import os
import sys

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mtsyn_tf.cli import run  # noqa: E402
from mtsyn_tf.data import real_domain, schema, writer  # noqa: E402
from mtsyn_tf.io_utils import check_output_dir  # noqa: E402

SYNTHETIC_SOURCES = ("hypersim", "scenenet_rgbd")
REAL_SOURCES = ("real_folder", "embedded_real", "places365")

FLAGS = flags.FLAGS
flags.DEFINE_enum("source", None, SYNTHETIC_SOURCES + REAL_SOURCES, "Dataset to convert.")
flags.DEFINE_string(
    "input_dir", None, "Upstream data: Hypersim/SceneNet manual_dir or a photo folder."
)
flags.DEFINE_string("manual_dir", None, "Alias of --input_dir (tfds terminology).")
flags.DEFINE_string("output_dir", None, "Directory for shards, manifest.json and grids.")
flags.DEFINE_list("split", ["train"], "Split(s) to convert, comma-separated.")
flags.DEFINE_integer("num_shards", 16, "Shards per split (fewer if there are fewer examples).")
flags.DEFINE_bool("overwrite", False, "Replace splits that already exist in output_dir.")
flags.DEFINE_integer("max_examples", None, "Convert at most this many examples per split.")
flags.DEFINE_enum("image_format", "png", ["png", "jpeg"], "Real photos only: PNG or JPEG.")
flags.DEFINE_string("places365_data_dir", None, "tfds data_dir holding places365_small.")
flags.DEFINE_integer(
    "real_short_side",
    real_domain.PLACES365_SIDE,
    "Real photos only: store larger photos downscaled to this shorter side (Places365's "
    "256 px, the paper's real domain); 0 stores them at full size.",
)


def _samples(
    source: str,
    input_dir: str | None,
    split: str,
    places365_data_dir: str | None,
    short_side: int | None,
):
    if source in SYNTHETIC_SOURCES or source == "real_folder":
        if not input_dir:
            raise ValueError(f"--source={source} needs --input_dir (or --manual_dir).")
    if source == "hypersim":
        from datasets.hypersim import convert

        return convert.iter_samples(input_dir, split)
    if source == "scenenet_rgbd":
        from datasets.scenenet_rgbd import convert

        return convert.iter_samples(input_dir, split)
    if source == "real_folder":
        return real_domain.iter_real_samples(input_dir, split, short_side=short_side)
    if source == "embedded_real":
        return real_domain.iter_real_samples(real_domain.EMBEDDED, split, short_side=short_side)
    return real_domain.iter_real_samples(
        real_domain.PLACES365, split, places365_data_dir, short_side
    )


def make_tfrecords(
    source: str,
    output_dir: str,
    splits=("train",),
    input_dir: str | None = None,
    num_shards: int = 16,
    overwrite: bool = False,
    max_examples: int | None = None,
    image_format: str = "png",
    places365_data_dir: str | None = None,
    real_short_side: int | None = real_domain.PLACES365_SIDE,
) -> dict:
    """Converts each split; returns ``{split: {"shards": [...], "sample_grid": path}}``.

    ``real_short_side``: real photos larger than this are stored downscaled to it
    (``real_domain.limit_short_side``); ``None`` keeps them at full size.
    """
    if source not in SYNTHETIC_SOURCES + REAL_SOURCES:
        raise ValueError(
            f"source must be one of {SYNTHETIC_SOURCES + REAL_SOURCES}. Received: source={source!r}"
        )
    kind = schema.KIND_SYNTHETIC if source in SYNTHETIC_SOURCES else schema.KIND_REAL
    name = {"embedded_real": real_domain.EMBEDDED}.get(source, source)
    results = {}
    for split in splits:
        samples = _samples(source, input_dir, split, places365_data_dir, real_short_side)
        if max_examples is not None:
            samples = itertools.islice(samples, max_examples)
        results[split] = writer.write_dataset(
            samples,
            output_dir,
            split,
            num_shards,
            kind,
            name,
            overwrite=overwrite,
            image_format=image_format if kind == schema.KIND_REAL else "png",
        )
    return results


def main(argv):
    del argv
    if FLAGS.input_dir and FLAGS.manual_dir and FLAGS.input_dir != FLAGS.manual_dir:
        raise ValueError(
            "Pass only one of --input_dir / --manual_dir. Received: "
            f"--input_dir={FLAGS.input_dir!r}, --manual_dir={FLAGS.manual_dir!r}"
        )
    check_output_dir(FLAGS.output_dir, "--output_dir")
    if FLAGS.real_short_side and FLAGS.real_short_side < real_domain.MIN_PHOTO_SIDE:
        raise ValueError(
            f"--real_short_side must be 0 (full size) or >= {real_domain.MIN_PHOTO_SIDE}. "
            f"Received: --real_short_side={FLAGS.real_short_side}"
        )
    results = make_tfrecords(
        FLAGS.source,
        FLAGS.output_dir,
        FLAGS.split,
        input_dir=FLAGS.input_dir or FLAGS.manual_dir,
        num_shards=FLAGS.num_shards,
        overwrite=FLAGS.overwrite,
        max_examples=FLAGS.max_examples,
        image_format=FLAGS.image_format,
        places365_data_dir=FLAGS.places365_data_dir,
        real_short_side=FLAGS.real_short_side or None,
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    flags.mark_flags_as_required(["source", "output_dir"])
    run(main, "make_tfrecords.py")
