"""Caffe-compatible weight blobs for a converted standard AlexNet (``.npz``).

Caffe's AlexNet convention: the input is a BGR image in 0–255 with the per-channel mean
subtracted (``mean_bgr``, default the ImageNet mean 104, 117, 123), NCHW layout, conv
weights [out, in, h, w], InnerProduct weights [out, in] over a C·H·W-flattened input.
Our network takes RGB in [0, 1], so conv1 absorbs the conversion exactly (conv1 has no
zero padding): x01[rgb] = (x_caffe[bgr] + mean_bgr) / 255 gives
W_caffe[o, c_bgr] = W[c_rgb, o] / 255 and b_caffe = b + Σ W · mean_rgb / 255.
fc6's rows are permuted from our (h, w, c) flattening to Caffe's (c, h, w).

Keys: ``conv1_w, conv1_b, …, conv5_w, conv5_b, fc6_w, fc6_b, fc7_w, fc7_b`` plus
``mean_bgr``. The matching prototxt is BVLC AlexNet without LRN layers and with
``group: 1`` everywhere (our convs are not split in two groups), ending at relu7.
"""

from __future__ import annotations

import numpy as np

from mtsyn_tf.export.atomic import atomic_file
from mtsyn_tf.export.standard_alexnet import PARAM_LAYERS

IMAGENET_MEAN_BGR = (104.0, 117.0, 123.0)


def caffe_blobs(alexnet, mean_bgr=IMAGENET_MEAN_BGR) -> dict:
    """Returns the Caffe-layout blobs of a standard AlexNet (``standard_alexnet``)."""
    mean_bgr = np.asarray(mean_bgr, np.float64)
    if mean_bgr.shape != (3,):
        raise ValueError(f"mean_bgr must have 3 values (B, G, R). Received: {mean_bgr}")
    blobs = {"mean_bgr": mean_bgr.astype(np.float32)}
    for name in PARAM_LAYERS:
        kernel, bias = (w.astype(np.float64) for w in alexnet.get_layer(name).get_weights())
        if name == "conv1":
            bias = bias + np.einsum("hwco,c->o", kernel, mean_bgr[::-1]) / 255.0
            kernel = kernel[:, :, ::-1, :] / 255.0  # RGB → BGR input channels, 0–255 input.
        if kernel.ndim == 4:
            kernel = kernel.transpose(3, 2, 0, 1)  # [h, w, in, out] → [out, in, h, w]
        elif name == "fc6":
            channels = alexnet.get_layer("conv5").get_weights()[0].shape[-1]
            side = int(round(np.sqrt(kernel.shape[0] / channels)))
            kernel = (
                kernel.reshape(side, side, channels, -1)
                .transpose(3, 2, 0, 1)
                .reshape(kernel.shape[1], -1)
            )
        else:
            kernel = kernel.T
        blobs[f"{name}_w"] = np.ascontiguousarray(kernel, np.float32)
        blobs[f"{name}_b"] = bias.astype(np.float32)
    return blobs


def save_caffe_npz(alexnet, path: str, mean_bgr=IMAGENET_MEAN_BGR) -> str:
    """Writes ``caffe_blobs`` to ``path`` (.npz) atomically."""
    blobs = caffe_blobs(alexnet, mean_bgr)
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **blobs)
    return path
