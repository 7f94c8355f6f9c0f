"""The one image preprocessing used by the serving graph and by scripts/predict.py.

Keeping it in one TF function means a photo sent as bytes to ``predict_bytes`` and the same
photo run through ``scripts/predict.py`` give identical numbers.

Decoding: ``tf.io.decode_image(channels=3, expand_animations=False)`` accepts JPEG, PNG,
GIF (first frame) and BMP. Grayscale files are replicated to 3 channels and RGBA files lose
their alpha channel (alpha is ignored, not composited), both done by the decoder itself;
16-bit PNGs are scaled to 8 bits. Resizing: the whole image is stretched to S×S (no crop,
aspect ratio not kept) with antialiased bilinear interpolation, after conversion to float32
in [0, 1]. The network was trained on square crops, so a strongly non-square photo comes out
distorted; crop it beforehand if that matters.
"""

from __future__ import annotations

import tensorflow as tf

# First bytes of the formats tf.io.decode_image understands.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")


def check_image_values(image: tf.Tensor, image_size: int, batch_size: int | None = None):
    """Asserts (in-graph) that ``image`` is float [B, S, S, 3] in [0, 1] and fixes its shape.

    The messages name what was expected, so a client of TF Serving sees e.g.
    "image must have shape [batch, 227, 227, 3] ..." instead of a failure deep inside a
    convolution. Returns the image with its static shape set.
    """
    shape = tf.shape(image)
    expected = tf.constant([image_size, image_size, 3], tf.int32)
    # A loaded signature does not enforce the rank, so check it before comparing shapes.
    rank_check = tf.debugging.assert_equal(
        tf.size(shape),
        4,
        message=f"image must be a rank-4 batch [batch, {image_size}, {image_size}, 3]; "
        "add a leading batch axis for a single image",
    )
    with tf.control_dependencies([rank_check]):
        shape = tf.identity(shape)
        image = tf.identity(image)
    checks = [
        tf.debugging.assert_equal(
            shape[1:],
            expected,
            message=f"image must have shape [batch, {image_size}, {image_size}, 3] (RGB). "
            "Resize the photo first or use the predict_bytes signature",
        ),
        tf.debugging.assert_all_finite(image, message="image contains NaN or Inf"),
        tf.debugging.assert_greater_equal(
            tf.reduce_min(image),
            tf.constant(-1e-3, image.dtype),
            message="image values must lie in [0, 1] (float32 RGB); got a negative value",
        ),
        tf.debugging.assert_less_equal(
            tf.reduce_max(image),
            tf.constant(1.0 + 1e-3, image.dtype),
            message="image values must lie in [0, 1] (float32 RGB); divide 0-255 images by 255",
        ),
    ]
    checks += _fixed_batch_checks(shape, batch_size)
    with tf.control_dependencies(checks):
        image = tf.identity(image)
    # The static batch stays unknown even for a fixed-batch export: with a static batch the
    # model's kernels (sized from it) failed on a wrong batch before the assert reported it.
    return tf.ensure_shape(image, [None, image_size, image_size, 3])


def _fixed_batch_checks(shape: tf.Tensor, batch_size: int | None) -> list:
    """The assertion that a fixed-batch export got exactly ``batch_size`` inputs (or none)."""
    if batch_size is None:
        return []
    return [
        tf.debugging.assert_equal(
            shape[0], batch_size, message=f"this export takes batches of exactly {batch_size}"
        )
    ]


def check_bytes_batch(image_bytes: tf.Tensor, batch_size: int | None = None) -> tf.Tensor:
    """Asserts (in-graph) that ``image_bytes`` is a 1-D batch [B] (B = ``batch_size`` if
    fixed); returns it with static shape [None]. A scalar string fails with a message
    saying to send a list of one, before anything indexes into it."""
    shape = tf.shape(image_bytes)
    rank_check = tf.debugging.assert_equal(
        tf.size(shape),
        1,
        message="image_bytes must be a 1-D batch [batch] of encoded image files; "
        "wrap a single image in a list of one",
    )
    with tf.control_dependencies([rank_check]):
        shape = tf.identity(shape)
    checks = [rank_check] + _fixed_batch_checks(shape, batch_size)
    with tf.control_dependencies(checks):
        image_bytes = tf.identity(image_bytes)
    return tf.ensure_shape(image_bytes, [None])


def decode_and_resize(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
    """One encoded image (scalar tf.string) → float32 [S, S, 3] in [0, 1]."""
    head = tf.strings.substr(image_bytes, 0, 4)
    known = tf.reduce_any(tf.stack([tf.strings.substr(head, 0, len(m)) == m for m in _MAGIC]))
    check = tf.debugging.assert_equal(
        known,
        True,
        message="image_bytes: an element is not a JPEG, PNG, GIF or BMP file (judged by its "
        "first bytes); send the raw file contents",
    )
    with tf.control_dependencies([check]):
        image = tf.io.decode_image(image_bytes, channels=3, dtype=tf.uint8, expand_animations=False)
    image = tf.image.convert_image_dtype(image, tf.float32)
    image = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)
    return tf.clip_by_value(image, 0.0, 1.0)


def decode_batch(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
    """[B] tf.string → float32 [B, S, S, 3]; each image may have its own size and format."""
    return tf.map_fn(
        lambda b: decode_and_resize(b, image_size),
        image_bytes,
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
    )
