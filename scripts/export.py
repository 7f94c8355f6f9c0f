"""Exports a trained multi-task net: TF Serving SavedModel, ONNX, standard AlexNet, preset.

--checkpoint takes a training workdir, checkpoints dir, checkpoint prefix or saved preset
(anything ``MultiTaskNet.from_preset`` loads); --format=preset converts a run into a saved
preset directory (config.json, model.weights.h5, preprocessor.json, metadata.json).

Examples:
  python scripts/export.py --checkpoint=runs/demo --format=serving \
      --model_base_path=exports/mtsyn
  python scripts/export.py --checkpoint=runs/demo --format=onnx --output=exports/onnx
  python scripts/export.py --checkpoint=runs/demo --format=alexnet --output=exports/alexnet \
      --rescale_images=photos/ --caffe
  python scripts/export.py --checkpoint=runs/demo --format=preset --output=presets/demo
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from absl import flags

from mtsyn_tf.cli import run, tf_error_reason
from mtsyn_tf.export import (
    convert_to_standard_alexnet,
    export_for_serving,
    export_onnx_base,
    export_onnx_predictor,
    krahenbuhl_rescale,
    save_standard_alexnet,
)
from mtsyn_tf.export.atomic import atomic_directory
from mtsyn_tf.export.predictor import list_images, load_image
from mtsyn_tf.io_utils import check_output_dir
from mtsyn_tf.models import MultiTaskNet
from mtsyn_tf.models.preprocessor import InputContract

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "checkpoint", None, "Training workdir, checkpoints dir, checkpoint prefix or saved preset."
)
flags.DEFINE_string(
    "preset",
    None,
    "Expected preset name (checked against the recorded one); with --random_init, the preset "
    "to build.",
)
flags.DEFINE_bool("random_init", False, "Export a freshly initialised model (smoke tests only).")
flags.DEFINE_enum("format", "serving", ["serving", "onnx", "alexnet", "preset"], "What to export.")
flags.DEFINE_string("model_base_path", None, "TF Serving model base path (--format=serving).")
flags.DEFINE_integer("version", None, "Version directory; default: next free number.")
flags.DEFINE_integer("batch_size", None, "Fix the batch dimension (default: polymorphic).")
flags.DEFINE_string("model_name", "mtsyn", "Model name written into the warmup requests.")
flags.DEFINE_string("output", None, "Output directory (--format=onnx, alexnet or preset).")
flags.DEFINE_string(
    "rescale_images",
    None,
    "Folder of photos for Krähenbühl rescaling (--format=alexnet); omitted: no rescaling.",
)
flags.DEFINE_enum(
    "alexnet_input",
    "color",
    ["color", "pretraining"],
    "--format=alexnet input contract: colour images (what the reference fine-tunes on) or "
    "the run's own (channel mean for a grey-trained run). Recorded in input_contract.json.",
)
flags.DEFINE_integer("rescale_count", 64, "At most this many photos are used for rescaling.")
flags.DEFINE_bool("caffe", False, "Also write Caffe-layout blobs (--format=alexnet).")
flags.DEFINE_bool("overwrite", False, "Replace an existing export directory.")


def _load_model():
    """(model, the run's InputContract); a random-init smoke export is colour."""
    if FLAGS.random_init:
        model = MultiTaskNet.from_preset(FLAGS.preset or "small", load_weights=False)
    elif not FLAGS.checkpoint:
        raise ValueError("--checkpoint is required (or --random_init for a smoke test).")
    else:
        model = MultiTaskNet.from_preset(FLAGS.checkpoint, expected_preset=FLAGS.preset)
    return model, model.input_contract


def _check_output_flags() -> None:
    """Output flags checked before the (slow) model load; nothing is created."""
    if FLAGS.format == "serving":
        if not FLAGS.model_base_path:
            raise ValueError("--model_base_path is required for --format=serving.")
        check_output_dir(FLAGS.model_base_path, "--model_base_path")
    elif not FLAGS.output:
        raise ValueError(f"--output is required for --format={FLAGS.format}.")
    else:
        check_output_dir(FLAGS.output, "--output")
        if os.path.exists(FLAGS.output) and not FLAGS.overwrite:
            raise ValueError(
                f"--output already exists; pass --overwrite to replace it. Received: {FLAGS.output}"
            )
    for name in ("version", "batch_size"):
        value = getattr(FLAGS, name)
        if value is not None and value < (0 if name == "version" else 1):
            raise ValueError(
                f"--{name} must be >= {0 if name == 'version' else 1}. Received: {value}"
            )


def main(argv):
    del argv
    _check_output_flags()
    model, contract = _load_model()
    destination = FLAGS.model_base_path if FLAGS.format == "serving" else FLAGS.output
    try:
        path = _export(model, contract)
    except (OSError, tf.errors.OpError) as err:  # disk full, I/O error: nothing was published
        reason = tf_error_reason(err) if isinstance(err, tf.errors.OpError) else err.strerror
        raise ValueError(
            f"Could not write the export to {destination} ({reason}); expected a writable "
            "directory with free space. Nothing was left there."
        ) from None
    print(f"Exported to {path}")


def _export(model, contract) -> str:
    """Writes the requested format (each writer publishes atomically); returns its path."""
    if FLAGS.format == "serving":
        return export_for_serving(
            model,
            FLAGS.model_base_path,
            version=FLAGS.version,
            batch_size=FLAGS.batch_size,
            overwrite=FLAGS.overwrite,
            model_name=FLAGS.model_name,
            input_contract=contract,
        )
    if FLAGS.format == "preset":
        return model.save_to_preset(FLAGS.output, contract, overwrite=FLAGS.overwrite)
    if FLAGS.format == "onnx":
        with atomic_directory(FLAGS.output, overwrite=FLAGS.overwrite) as tmp:
            export_onnx_predictor(
                model,
                os.path.join(tmp, "predictor.onnx"),
                batch_size=FLAGS.batch_size,
                input_contract=contract,
            )
            export_onnx_base(
                model,
                os.path.join(tmp, "base.onnx"),
                batch_size=FLAGS.batch_size,
                input_contract=contract,
            )
            contract.write(tmp)
        return FLAGS.output
    alexnet = convert_to_standard_alexnet(model)
    alexnet_contract = contract if FLAGS.alexnet_input == "pretraining" else InputContract()
    if FLAGS.rescale_images:
        files = list_images(FLAGS.rescale_images)[: FLAGS.rescale_count]
        images = np.stack([load_image(f, model.image_size) for f in files])
        krahenbuhl_rescale(alexnet, np.asarray(alexnet_contract(images)))
    return save_standard_alexnet(
        alexnet,
        FLAGS.output,
        overwrite=FLAGS.overwrite,
        caffe=FLAGS.caffe,
        input_contract=alexnet_contract,
        pretraining_contract=contract,
    )


if __name__ == "__main__":
    run(main, "export.py")
