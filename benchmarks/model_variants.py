"""Prototypes of model-level speed changes, applied to a built model by patching layers.

``compare_train_step.py --tf_variants=...`` times each against the unchanged model and the
PyTorch step in one run. Each variant computes the same function with the same weights
(only the summation order differs), so a measured gain can be carried into
``mtsyn_tf/models`` as a plain code change. Variants:

* ``keras``: the model as it is.
* ``fc_conv``: fc6 and fc7 through Keras' Conv2D, as before issue 13 (the "before" of
  ``ConvBNAct``'s matmul path, which the library now takes for 1×1 and dilated
  convolutions: see ``mtsyn_tf/models/layers.py``). Keras sends a dilated Conv2D through
  ``space_to_batch`` → 2×2 sub-images of 12×12 → conv → ``batch_to_space`` and crop,
  which computes 14×14 outputs for the 13×13 kept (16 % extra work on the largest layer)
  and copies the activations and their gradients twice more.
* ``fc6_dense``: fc6's im2col matmul over every output row, its zero padding multiplied
  too, as before ``ConvBNAct`` skipped the padding's rows (one matmul per kernel row over
  the rows where it reads the input: 23 % of fc6's multiply-adds; see
  ``mtsyn_tf/models/layers.py``). Its FLOPs are the nominal ones the benchmarks count.
* ``deconv_conv``: every transposed convolution of the heads through Keras'
  Conv2DTranspose (oneDNN/Eigen's transposed convolution), as before the library took
  the matmul + col2im form for the wide-to-narrow ones (Deconv8, output; see
  ``mtsyn_tf.models.layers.conv_transpose_as_matmul``).
* ``keras_bn``: every BatchNormalization through Keras 3's own training pass (moments +
  normalisation + their gradients, ~8 passes over each activation), as before the library
  took ``FusedBatchNormV3`` (``mtsyn_tf.models.batch_norm.BatchNorm``) for it.
* ``heads_fused``: the three heads' first transposed convolutions (4096 → 64 each, all on
  fc7) as one 4096 → 192 transposed convolution, split into the three heads' BN/ReLU: one
  large matmul instead of three narrow ones forward, and fc7's gradient from one op
  instead of three plus their sum.
* ``keras_adam``: B/H's (and an Adam D's) update through Keras 3's own ``Adam.update_step``
  (per variable: five element-wise ops with their temporaries and three assigns), as before
  ``make_adam`` took ``FusedAdam`` (one ``ResourceApplyAdam`` per variable; see
  ``mtsyn_tf/trainer/fused_adam.py``). It patches the class, so it applies to every
  ``FusedAdam`` whose step is traced after ``apply``; the slots are the same.
"""

from __future__ import annotations

# Combine with "+".
VARIANTS = ("keras", "fc_conv", "fc6_dense", "deconv_conv", "keras_bn", "heads_fused", "keras_adam")


def _batch_norms(model):
    import keras

    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def _fused_first_deconvs(model):
    """``forward`` for a MultiTaskNet whose heads share one first transposed convolution."""
    import tensorflow as tf

    tasks = list(model.tasks)
    heads = [model.heads[t] for t in tasks]
    convs = [h.deconv8.conv for h in heads]
    if any(c.use_bias or c.padding != "valid" for c in convs):
        raise ValueError("heads_fused expects VALID transposed convolutions without bias.")
    strides = convs[0].strides

    def forward(images, training=None):
        taps = model.backbone(images, training=training)
        x = taps["fc7"]
        # Conv2DTranspose kernels are [kh, kw, out, in]: stack the outputs.
        kernel = tf.concat([c.kernel for c in convs], axis=2)
        shape = convs[0].compute_output_shape(x.shape)
        y = tf.nn.conv2d_transpose(
            x,
            kernel,
            output_shape=[tf.shape(x)[0], shape[1], shape[2], kernel.shape[2]],
            strides=strides,
            padding="VALID",
        )
        predictions = {}
        for task, head, part in zip(tasks, heads, tf.split(y, len(heads), axis=-1)):
            part = head.deconv8.act(head.deconv8.bn(part, training=training))
            part = head.deconv10(head.deconv9(part, training=training), training=training)
            predictions[task] = head.out(part)
        return taps, predictions

    return forward


def apply(model, variant: str):
    """Patches ``model`` (a MultiTaskNet) in place; returns a function that undoes it."""
    if not set(variant.split("+")) <= set(VARIANTS):
        raise ValueError(f"variant must be one of {VARIANTS}. Received: variant={variant!r}")
    layers = []
    switched = []
    if "fc_conv" in variant:
        for layer in (model.backbone.fc6, model.backbone.fc7):
            layer.use_matmul = False
            switched.append(layer)
    dense = []
    if "fc6_dense" in variant:
        model.backbone.fc6.skip_padding_rows = False
        dense.append(model.backbone.fc6)
    patched_heads = []
    if "deconv_conv" in variant:
        from mtsyn_tf.models.alexnet import heads as alexnet_heads

        for head in model.heads.values():
            for layer in (head.deconv8, head.deconv9, head.deconv10):
                if layer.use_matmul:
                    layer.use_matmul = False
                    switched.append(layer)
        patched_heads.append((alexnet_heads, alexnet_heads.conv_transpose_as_matmul))
        alexnet_heads.conv_transpose_as_matmul = lambda conv, x: conv(x)
    patched_model = False
    if "heads_fused" in variant:
        model.forward = _fused_first_deconvs(model)
        patched_model = True
    if "keras_bn" in variant:
        import functools

        import keras

        for layer in _batch_norms(model):
            layer.call = functools.partial(keras.layers.BatchNormalization.call, layer)
            layers.append(layer)

    patched_adam = None
    if "keras_adam" in variant:
        import keras

        from mtsyn_tf.trainer.fused_adam import FusedAdam

        patched_adam = FusedAdam.__dict__["update_step"]
        FusedAdam.update_step = keras.optimizers.Adam.update_step

    def undo():
        for layer in layers:
            del layer.call
        for layer in switched:
            layer.use_matmul = True
        for layer in dense:
            layer.skip_padding_rows = True
        if patched_model:
            del model.forward
        for module, function in patched_heads:
            module.conv_transpose_as_matmul = function
        if patched_adam is not None:
            FusedAdam.update_step = patched_adam

    return undo
