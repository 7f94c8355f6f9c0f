"""Latency of the SavedModel vs ONNX Runtime, and max |diff| between every artifact.

  python benchmarks/export_latency.py --preset=small --repeats=10

Measures, on this machine's CPU, the median wall time per image of the ``predict_all``
SavedModel signature and the ONNX predictor at batch 1 and 8 (after one warm-up call), and
prints max absolute differences Keras vs SavedModel vs ONNX (physical outputs) and the
converted standard AlexNet vs the base net (conv5 everywhere, fc7 at the centre).
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import app, flags, logging

from mtsyn_tf.export import (
    OnnxRunner,
    convert_to_standard_alexnet,
    export_for_serving,
    export_onnx_predictor,
    save_standard_alexnet,
)
from mtsyn_tf.models import build_multitask_model

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", "small", "Model preset.")
flags.DEFINE_integer("repeats", 10, "Timed calls per configuration.")
flags.DEFINE_integer("threads", 0, "ONNX Runtime intra-op threads (0: its default).")


def _median_ms_per_image(fn, images, repeats):
    fn(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(images)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times)) / len(images)


def _test_images(size):
    from skimage import data, transform

    real = transform.resize(data.astronaut(), (size, size), anti_aliasing=True)
    rng = np.random.default_rng(0)
    return np.concatenate([real[None], rng.random((7, size, size, 3))]).astype(np.float32)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # tf2onnx and SavedModel writers are chatty
    model = build_multitask_model(FLAGS.preset)
    images = _test_images(model.image_size)
    with tempfile.TemporaryDirectory() as tmp:
        signature = tf.saved_model.load(
            export_for_serving(model, os.path.join(tmp, "serving"), warmup=False)
        ).signatures["predict_all"]
        onnx = OnnxRunner(export_onnx_predictor(model, os.path.join(tmp, "p.onnx")), FLAGS.threads)
        alexnet = convert_to_standard_alexnet(model)
        paths = save_standard_alexnet(alexnet, os.path.join(tmp, "alexnet"))
        alexnet_onnx = OnnxRunner(paths["onnx"], FLAGS.threads)

        def saved_model_fn(x):
            return {k: v.numpy() for k, v in signature(image=tf.constant(x)).items()}

        keras_out = {k: v.numpy() for k, v in model.predict_physical(images).items()}
        sm_out, onnx_out = saved_model_fn(images), onnx(images)
        print(f"preset={FLAGS.preset}  CPU threads visible={os.cpu_count()}")
        print(
            f"{'output':10s} {'keras-vs-savedmodel':>20s} {'keras-vs-onnx':>15s} {'savedmodel-vs-onnx':>19s}"
        )
        for key in keras_out:
            print(
                f"{key:10s} {np.abs(keras_out[key] - sm_out[key]).max():20.3g} "
                f"{np.abs(keras_out[key] - onnx_out[key]).max():15.3g} "
                f"{np.abs(sm_out[key] - onnx_out[key]).max():19.3g}"
            )
        taps = model.backbone(images, training=False)
        converted = alexnet(images)
        conv_onnx = alexnet_onnx(images)
        for tap, ref in (("conv5", taps["conv5"].numpy()), ("fc7", taps["fc7"].numpy()[:, 6, 6])):
            print(
                f"alexnet {tap}: base-vs-converted {np.abs(ref - converted[tap]).max():.3g}  "
                f"converted-vs-onnx {np.abs(converted[tap].numpy() - conv_onnx[tap]).max():.3g}  "
                f"(max |value| {np.abs(ref).max():.3g})"
            )
        print(f"{'batch':>5s} {'savedmodel ms/img':>18s} {'onnxruntime ms/img':>19s}")
        for batch in (1, 8):
            x = images[:batch]
            print(
                f"{batch:5d} {_median_ms_per_image(saved_model_fn, x, FLAGS.repeats):18.1f} "
                f"{_median_ms_per_image(onnx, x, FLAGS.repeats):19.1f}"
            )


if __name__ == "__main__":
    app.run(main)
