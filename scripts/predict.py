"""Runs a SavedModel export or a training checkpoint on a folder of photos.

Writes, per photo, ``<name>_depth.png`` (inverse depth, MAGMA colours, near = bright), ``<name>_normals.png``
(RGB = (n + 1) / 2, camera frame), ``<name>_contour.png`` (white = contour) and a side-by-side
``<name>_sheet.png``; with --save_raw also ``<name>_<task>.npy`` (metres / unit vectors /
probabilities). Photos of any size are stretched to the network's 227×227 input.

Example:
  python scripts/predict.py --model=exports/mtsyn --input_dir=photos --output_dir=out
"""

from __future__ import annotations

from absl import app, flags

from mtsyn_tf.cli import one_line_errors
from mtsyn_tf.export.predictor import Predictor, predict_folder

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "model", None, "SavedModel dir, model_base_path, training workdir or checkpoint."
)
flags.DEFINE_string("input_dir", None, "Folder of photos (jpg, png, bmp, gif).")
flags.DEFINE_string("output_dir", None, "Where the PNGs (and .npy files) go.")
flags.DEFINE_integer("batch_size", 8, "Images per forward pass.")
flags.DEFINE_bool("save_raw", False, "Also write the raw outputs as .npy.")
flags.mark_flags_as_required(["model", "input_dir", "output_dir"])


def main(argv):
    del argv
    predictor = Predictor(FLAGS.model)
    files = predict_folder(
        predictor, FLAGS.input_dir, FLAGS.output_dir, FLAGS.batch_size, save_raw=FLAGS.save_raw
    )
    print(
        f"Wrote predictions for {len(files)} images from {predictor.source} to {FLAGS.output_dir}"
    )


if __name__ == "__main__":
    app.run(one_line_errors(main, "predict.py"))
