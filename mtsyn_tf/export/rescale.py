"""Krähenbühl et al. 2016 data-dependent rescaling of a converted (standard) AlexNet.

Fine-tuning a converted network with one learning rate works badly when its layers and
channels live on very different scales (a folded BN can leave a conv with weights 100×
larger than the next). Krähenbühl, Doersch, Donahue & Darrell, "Data-dependent
Initializations of CNNs" (ICLR 2016) fix this with two steps, both applied here on a batch
of images. The variant, exactly:

1. Within-layer (their Algorithm 1, scale part only). For each parameter layer l in
   order, σ_lk = std over batch and positions of channel k of l's pre-ReLU output. Channel
   k's weights and bias are divided by σ_lk, and the next layer's input weights for that
   channel multiplied by σ_lk. ReLU, max-pooling and zero padding commute with a positive
   per-channel scale, so every layer's pre-activation gets per-channel std ``target_std``
   and the function is unchanged up to the last layer's (fc7) per-channel scale. Their
   mean shift (bias := β − μ/σ) is *not* applied: on a trained network it would change
   which units fire, i.e. destroy the learned features.
2. Between-layer (their Algorithm 2; ``calibrateGradientRatio`` of the public magic_init
   code, used there to rescale pretrained nets). With a fixed random Gaussian gradient G
   at the fc7 output (loss ⟨fc7, G⟩), ratio_l = √(mean(∂W_l²) / mean(W_l²)); the target is
   their geometric mean. Layer l's weights are multiplied by s_l = √(ratio_l / target) and
   its bias by s_l·Π_{j<l} s_j (its input is scaled by the earlier factors; the reference
   code estimates that product from mean |input|, here it is exact). Because Π s_l = 1
   the output is unchanged, and every layer then changes at the same relative rate under
   SGD. Repeated until all ratios are within ``tolerance`` of the target (one step is
   exact for this homogeneous network with a fixed G; the loop only confirms it).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mtsyn_tf.export.standard_alexnet import PARAM_LAYERS, preactivation_model


def _scale_input_channels(layer, factors: np.ndarray) -> None:
    """Multiplies the weights reading input channel k by factors[k] (conv or fc6/fc7)."""
    kernel, bias = layer.get_weights()
    channels = factors.shape[0]
    if kernel.ndim == 4:
        kernel = kernel * factors[None, None, :, None]
    elif kernel.shape[0] == channels:
        kernel = kernel * factors[:, None]
    else:  # fc6 over the flattened (h, w, c) pool5 map.
        kernel = (kernel.reshape(-1, channels, kernel.shape[-1]) * factors[None, :, None]).reshape(
            kernel.shape
        )
    layer.set_weights([kernel.astype(np.float32), bias])


def within_layer_rescale(alexnet, images, target_std: float = 1.0, batch_size: int = 16) -> dict:
    """Step 1: per-channel pre-activation std → ``target_std``; returns σ per layer."""
    probe = preactivation_model(alexnet)
    sums = {n: 0.0 for n in PARAM_LAYERS}
    squares = {n: 0.0 for n in PARAM_LAYERS}
    count = {n: 0 for n in PARAM_LAYERS}
    for start in range(0, len(images), batch_size):
        outputs = probe(np.asarray(images[start : start + batch_size], np.float32), training=False)
        for name in PARAM_LAYERS:
            value = outputs[name].numpy().astype(np.float64)
            value = value.reshape(-1, value.shape[-1])
            sums[name] = sums[name] + value.sum(0)
            squares[name] = squares[name] + (value * value).sum(0)
            count[name] += value.shape[0]
    sigmas = {}
    for i, name in enumerate(PARAM_LAYERS):
        mean = sums[name] / count[name]
        std = np.sqrt(np.maximum(squares[name] / count[name] - mean * mean, 0.0))
        # A dead channel (constant output) keeps its scale.
        sigma = np.where(std > 1e-8, std / target_std, 1.0)
        sigmas[name] = sigma
        layer = alexnet.get_layer(name)
        kernel, bias = layer.get_weights()
        layer.set_weights([(kernel / sigma).astype(np.float32), (bias / sigma).astype(np.float32)])
        if i + 1 < len(PARAM_LAYERS):
            _scale_input_channels(alexnet.get_layer(PARAM_LAYERS[i + 1]), sigma)
    return sigmas


def gradient_ratios(alexnet, images, top_gradient) -> dict:
    """√(mean(∂W²)/mean(W²)) per layer for the loss ⟨fc7 pre-activation, G⟩."""
    probe = preactivation_model(alexnet)
    kernels = [alexnet.get_layer(n).kernel for n in PARAM_LAYERS]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(probe(images, training=False)["fc7"] * top_gradient)
    grads = tape.gradient(loss, kernels)
    return {
        n: float(np.sqrt(np.mean(g.numpy() ** 2) / np.mean(k.numpy() ** 2)))
        for n, g, k in zip(PARAM_LAYERS, grads, kernels)
    }


def between_layer_rescale(
    alexnet, images, iterations: int = 10, tolerance: float = 0.01, seed: int = 0
) -> list:
    """Step 2: equalise the gradient/weight ratio across layers; returns the ratio history."""
    images = tf.constant(np.asarray(images, np.float32))
    out_shape = preactivation_model(alexnet)(images[:1])["fc7"].shape[1:]
    top = tf.constant(
        np.random.default_rng(seed).standard_normal((images.shape[0], *out_shape)), tf.float32
    )
    history = []
    for _ in range(iterations):
        ratios = gradient_ratios(alexnet, images, top)
        history.append(ratios)
        values = np.array([ratios[n] for n in PARAM_LAYERS])
        target = np.exp(np.mean(np.log(values)))
        if np.all(np.abs(np.log(values / target)) < np.log1p(tolerance)):
            break
        input_scale = 1.0
        for name, ratio in zip(PARAM_LAYERS, values):
            scale = np.sqrt(ratio / target)
            layer = alexnet.get_layer(name)
            kernel, bias = layer.get_weights()
            layer.set_weights(
                [
                    (kernel * scale).astype(np.float32),
                    (bias * scale * input_scale).astype(np.float32),
                ]
            )
            input_scale *= scale
    return history


def krahenbuhl_rescale(alexnet, images, between_layer: bool = True, seed: int = 0) -> dict:
    """Both steps in place on a standard AlexNet; returns what was measured."""
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) < 2:
        raise ValueError(
            "Rescaling needs a batch of at least 2 RGB images [B, S, S, 3] in [0, 1]. "
            f"Received shape {images.shape}"
        )
    report = {"within_layer_sigmas": within_layer_rescale(alexnet, images)}
    if between_layer:
        report["gradient_ratios"] = between_layer_rescale(alexnet, images, seed=seed)
    return report


def standard_alexnet_for_finetuning(model, rescale_images=None, seed: int = 0):
    """(standard AlexNet, report): the transfer protocols' starting point (SPEC §5).

    Converts ``model`` and, when ``rescale_images`` (float [N, S, S, 3] in [0, 1], already
    passed through the fine-tuning input contract) is given, applies both rescaling steps
    in place before any fine-tuning, as the reference does (it fine-tunes the rescaled
    ``_rs.caffemodel``). ``report`` is None when not rescaled.
    """
    from mtsyn_tf.export.alexnet_convert import convert_to_standard_alexnet

    alexnet = convert_to_standard_alexnet(model)
    if rescale_images is None:
        return alexnet, None
    if len(rescale_images) < 2:
        raise ValueError(
            "Krähenbühl rescaling before fine-tuning needs at least 2 training images; use "
            f"more training data or --norescale (rescale=False). Received: {len(rescale_images)}"
        )
    return alexnet, krahenbuhl_rescale(alexnet, rescale_images, seed=seed)
