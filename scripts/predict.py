"""Runs a SavedModel export, a saved preset or a training run on a folder of photos.

Writes, per photo, ``<name>_depth.png`` (inverse depth, MAGMA colours, near = bright), ``<name>_normals.png``
(RGB = (n + 1) / 2, camera frame), ``<name>_contour.png`` (white = contour) and a side-by-side
``<name>_sheet.png``; with --save_raw also ``<name>_<task>.npy`` (metres / unit vectors /
probabilities). Photos of any size are stretched to the network's 227×227 input.

--model takes a SavedModel (or TF Serving model_base_path), or anything
``MultiTaskNet.from_preset`` loads: a saved preset directory (scripts/export.py
--format=preset), a training workdir or a checkpoint prefix.

Example:
  python scripts/predict.py --model=exports/mtsyn --input_dir=photos --output_dir=out
  python scripts/predict.py --model=presets/demo --input_dir=photos --output_dir=out
"""

from __future__ import annotations

import os
import shutil

from absl import flags

from mtsyn_tf.cli import run
from mtsyn_tf.export.predictor import Predictor, list_images, predict_folder
from mtsyn_tf.io_utils import check_output_dir

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "model",
    None,
    "SavedModel dir, model_base_path, saved preset dir, training workdir or checkpoint prefix.",
)
flags.DEFINE_string("input_dir", None, "Folder of photos (jpg, png, bmp, gif).")
flags.DEFINE_string("output_dir", None, "Where the PNGs (and .npy files) go.")
flags.DEFINE_integer("batch_size", 8, "Images per forward pass.")
flags.DEFINE_bool("save_raw", False, "Also write the raw outputs as .npy.")
flags.mark_flags_as_required(["model", "input_dir", "output_dir"])


def main(argv):
    del argv
    if FLAGS.batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1. Received: --batch_size={FLAGS.batch_size}")
    check_output_dir(FLAGS.output_dir, "--output_dir")
    list_images(FLAGS.input_dir)  # a missing or empty folder fails before the model loads
    predictor = Predictor(FLAGS.model)
    created = not os.path.exists(FLAGS.output_dir)
    try:
        files = predict_folder(
            predictor, FLAGS.input_dir, FLAGS.output_dir, FLAGS.batch_size, save_raw=FLAGS.save_raw
        )
    except BaseException as err:
        # Each output file is written whole; a folder this run created holds only part of
        # the predictions, so it goes (an existing folder keeps the complete files).
        if created:
            shutil.rmtree(FLAGS.output_dir, ignore_errors=True)
        if isinstance(err, OSError) and err.filename is None:  # e.g. a full disk in write()
            raise OSError(err.errno, err.strerror, FLAGS.output_dir) from err
        raise
    print(
        f"Wrote predictions for {len(files)} images from {predictor.source} to {FLAGS.output_dir}"
    )


if __name__ == "__main__":
    run(main, "predict.py")
