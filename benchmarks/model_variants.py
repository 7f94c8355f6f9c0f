"""Prototypes of model-level speed changes, applied to a built model by patching layers.

``compare_train_step.py --tf_variants=...`` times each against the unchanged model and the
PyTorch step in one run. Each variant computes the same function with the same weights
(only the summation order differs), so a measured gain can be carried into
``mtsyn_tf/models`` as a plain code change. Variants:

* ``keras``: the model as it is.
* ``fc_matmul``: the bottleneck as two matmuls. fc6 (6×6, dilation 2, on conv5 padded by 5
  to 23×23) becomes an im2col by 36 strided slices concatenated on channels
  ([B, 13, 13, 36·C]) times the kernel reshaped to [36·C, 4096]; fc7 (1×1) becomes
  [B·169, 4096] × [4096, 4096]. Keras sends a dilated Conv2D through
  ``space_to_batch`` → 2×2 sub-images of 12×12 → conv → ``batch_to_space`` and crop,
  which computes 14×14 outputs for the 13×13 kept (16 % extra work on the largest layer)
  and copies the activations and their gradients twice more.
"""

from __future__ import annotations

VARIANTS = ("keras", "fc_matmul")


def _dilated_conv_as_matmul(conv):
    """``call`` for a VALID, stride-1, dilated Conv2D layer without bias: im2col + matmul."""
    import tensorflow as tf

    kh, kw = conv.kernel_size
    dh, dw = conv.dilation_rate

    def call(x):
        height = x.shape[1] - dh * (kh - 1)
        width = x.shape[2] - dw * (kw - 1)
        # Channel order (ky, kx, c): the row-major flattening of the [kh, kw, C, F] kernel.
        patches = tf.concat(
            [
                x[:, dh * i : dh * i + height, dw * j : dw * j + width, :]
                for i in range(kh)
                for j in range(kw)
            ],
            axis=-1,
        )
        kernel = tf.reshape(conv.kernel, [-1, conv.filters])
        return tf.tensordot(patches, tf.cast(kernel, patches.dtype), axes=1)

    return call


def apply(model, variant: str):
    """Patches ``model`` (a MultiTaskNet) in place; returns a function that undoes it."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}. Received: variant={variant!r}")
    if variant == "keras":
        return lambda: None
    layers = [model.backbone.fc6.conv, model.backbone.fc7.conv]
    for layer in layers:
        if layer.use_bias or layer.strides != (1, 1) or layer.padding != "valid":
            raise ValueError(f"{layer.name}: expected a stride-1 VALID conv without bias.")
        layer.call = _dilated_conv_as_matmul(layer)

    def undo():
        for layer in layers:
            del layer.call

    return undo
