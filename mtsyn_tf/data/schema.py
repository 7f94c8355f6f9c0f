"""The on-disk tf.train.Example schema for synthetic and real samples (encoder + decoder).

One module owns both directions so they cannot drift apart. Encoders run in numpy on
the writer side and validate every field (dtype, shape, finiteness, label ranges)
before anything reaches disk; decoders are pure TF ops (usable inside
``tf.data.Dataset.map``) that parse and decode but never augment.

Storage choices (all lossless, so ``decode(encode(x)) == x`` bit for bit):

* ``image``: PNG (lossless). Real photos may opt into JPEG (``image_format="jpeg"``)
  to keep large photo collections small; they are lossy by nature anyway.
* ``depth``, ``normals``: raw little-endian float32 bytes plus the shape. float16
  would halve the size but quantises depth to ~1/2048 relative (≈5 mm at 10 m) and
  tops out at 65504, which silently changes the scale-invariant depth targets; we keep
  float32 so a converted dataset reproduces the source numbers exactly.
* ``instance``: raw little-endian int32 bytes (ids may be negative, e.g. Hypersim -1).
* ``contour``, ``valid``: single-channel PNG of {0, 1} (sparse maps compress ~100x).
* ``intrinsics``: float list ``(fx, fy, cx, cy)``.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
import tensorflow as tf

SCHEMA_VERSION = 1
KIND_SYNTHETIC = "synthetic"
KIND_REAL = "real"
IMAGE_FORMATS = ("png", "jpeg")

SYNTHETIC_KEYS = (
    "image",
    "depth",
    "normals",
    "instance",
    "contour",
    "valid",
    "intrinsics",
    "scene_id",
    "image_id",
    "source",
)
REAL_KEYS = ("image", "image_id", "source")

# Normals must be unit length where present; zero vectors mark "no normal" (e.g. a valid
# depth pixel whose neighbours are invalid, see geometry.normals_from_depth).
_UNIT_TOLERANCE = 1e-3


# --------------------------------------------------------------------------- helpers
def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int_feature(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _float_feature(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def _sample_name(sample: Mapping) -> str:
    return f"image_id={sample.get('image_id')!r} (scene_id={sample.get('scene_id')!r})"


def _require(sample: Mapping, keys) -> None:
    missing = [k for k in keys if k not in sample]
    if missing:
        raise ValueError(
            f"Sample {_sample_name(sample)} is missing keys {missing}. "
            f"Expected keys: {list(keys)}. Received keys: {sorted(sample)}"
        )


def _array(sample: Mapping, key: str, dtype, ndim: int, channels: int | None = None):
    value = np.asarray(sample[key])
    if value.dtype != np.dtype(dtype):
        raise ValueError(
            f"Sample {_sample_name(sample)}: `{key}` must have dtype {np.dtype(dtype).name}. "
            f"Received: dtype={value.dtype}"
        )
    if value.ndim != ndim or (channels is not None and value.shape[-1] != channels):
        expected = "[H, W]" if ndim == 2 else f"[H, W, {channels}]"
        raise ValueError(
            f"Sample {_sample_name(sample)}: `{key}` must have shape {expected}. "
            f"Received: shape={value.shape}"
        )
    if value.shape[0] == 0 or value.shape[1] == 0:
        raise ValueError(
            f"Sample {_sample_name(sample)}: `{key}` is empty. Received: shape={value.shape}"
        )
    return value


def _string(sample: Mapping, key: str, allow_empty: bool) -> bytes:
    value = sample[key]
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if not isinstance(value, str) or (not allow_empty and not value):
        raise ValueError(
            f"Sample {_sample_name(sample)}: `{key}` must be a non-empty str. Received: {value!r}"
        )
    return value.encode("utf-8")


def _encode_png(array: np.ndarray, what: str) -> bytes:
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(array))
    if not ok:
        raise ValueError(f"PNG encoding of `{what}` failed. Received shape={array.shape}")
    return buffer.tobytes()


def _encode_image(image: np.ndarray, image_format: str, jpeg_quality: int) -> bytes:
    if image_format == "png":
        return _encode_png(image, "image")
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    if not ok:
        raise ValueError(f"JPEG encoding of `image` failed. Received shape={image.shape}")
    return buffer.tobytes()


def _check_format(image_format: str) -> None:
    if image_format not in IMAGE_FORMATS:
        raise ValueError(
            f"image_format must be one of {IMAGE_FORMATS}. Received: image_format={image_format!r}"
        )


# ------------------------------------------------------------------------- validation
def validate_synthetic(sample: Mapping) -> dict[str, np.ndarray]:
    """Checks a synthetic sample against docs/CONTRACTS.md and returns its arrays.

    Raises:
        ValueError: naming the sample and the offending field for any missing key, wrong
            dtype/shape, mismatched sizes, non-finite values, negative depth, non-unit
            normals, contour outside {0, 1} or a `valid` mask that disagrees with depth.
    """
    _require(sample, SYNTHETIC_KEYS)
    name = _sample_name(sample)
    image = _array(sample, "image", np.uint8, 3, 3)
    height, width = image.shape[:2]
    arrays = {
        "image": image,
        "depth": _array(sample, "depth", np.float32, 2),
        "normals": _array(sample, "normals", np.float32, 3, 3),
        "instance": _array(sample, "instance", np.int32, 2),
        "contour": _array(sample, "contour", np.uint8, 2),
        "valid": _array(sample, "valid", np.bool_, 2),
    }
    for key, value in arrays.items():
        if value.shape[:2] != (height, width):
            raise ValueError(
                f"Sample {name}: `{key}` must match the image size {(height, width)}. "
                f"Received: shape={value.shape}"
            )
    depth, normals, valid = arrays["depth"], arrays["normals"], arrays["valid"]
    bad = ~np.isfinite(depth)
    if bad.any():
        where = "where valid is True" if (bad & valid).any() else "(store 0 for invalid pixels)"
        raise ValueError(
            f"Sample {name}: depth has {int(bad.sum())} non-finite (NaN/inf) values {where}. "
            "Depth must be finite planar metres with 0 marking invalid pixels."
        )
    if (depth < 0).any():
        raise ValueError(
            f"Sample {name}: depth has {int((depth < 0).sum())} negative values. "
            f"Received: min={float(depth.min())}"
        )
    mismatch = valid != (depth > 0)
    if mismatch.any():
        raise ValueError(
            f"Sample {name}: `valid` must equal (depth > 0); they disagree at "
            f"{int(mismatch.sum())} pixels."
        )
    if not np.isfinite(normals).all():
        raise ValueError(f"Sample {name}: normals contain non-finite values.")
    norm = np.linalg.norm(normals, axis=-1)
    unit_or_zero = (np.abs(norm - 1.0) < _UNIT_TOLERANCE) | (norm == 0.0)
    if not unit_or_zero.all():
        raise ValueError(
            f"Sample {name}: normals must be unit vectors (or exactly 0 where unknown); "
            f"{int((~unit_or_zero).sum())} pixels are not. Received norms in "
            f"[{float(norm.min())}, {float(norm.max())}]"
        )
    if (norm[~valid] != 0).any():
        raise ValueError(f"Sample {name}: normals must be 0 where valid is False.")
    if not np.isin(arrays["contour"], (0, 1)).all():
        raise ValueError(
            f"Sample {name}: contour must contain only {{0, 1}}. "
            f"Received values: {np.unique(arrays['contour'])[:10]}"
        )
    intrinsics = np.asarray(sample["intrinsics"])
    if (
        intrinsics.shape != (4,)
        or not np.issubdtype(intrinsics.dtype, np.floating)
        or not np.isfinite(intrinsics).all()
        or intrinsics[0] <= 0
        or intrinsics[1] <= 0
    ):
        raise ValueError(
            f"Sample {name}: intrinsics must be 4 finite floats (fx, fy, cx, cy) with "
            f"fx, fy > 0. Received: {sample['intrinsics']!r}"
        )
    arrays["intrinsics"] = intrinsics.astype(np.float32)
    return arrays


# --------------------------------------------------------------------------- encoders
def encode_synthetic(sample: Mapping) -> bytes:
    """Serialises a synthetic sample (keys in SYNTHETIC_KEYS) to a tf.train.Example."""
    arrays = validate_synthetic(sample)
    height, width = arrays["image"].shape[:2]
    feature = {
        "schema_version": _int_feature([SCHEMA_VERSION]),
        "kind": _bytes_feature(KIND_SYNTHETIC.encode()),
        "height": _int_feature([height]),
        "width": _int_feature([width]),
        "image/encoded": _bytes_feature(_encode_png(arrays["image"], "image")),
        "image/format": _bytes_feature(b"png"),
        "depth/raw": _bytes_feature(arrays["depth"].astype("<f4").tobytes()),
        "normals/raw": _bytes_feature(arrays["normals"].astype("<f4").tobytes()),
        "instance/raw": _bytes_feature(arrays["instance"].astype("<i4").tobytes()),
        "contour/encoded": _bytes_feature(_encode_png(arrays["contour"], "contour")),
        "valid/encoded": _bytes_feature(_encode_png(arrays["valid"].astype(np.uint8), "valid")),
        "intrinsics": _float_feature(arrays["intrinsics"]),
        "scene_id": _bytes_feature(_string(sample, "scene_id", allow_empty=True)),
        "image_id": _bytes_feature(_string(sample, "image_id", allow_empty=False)),
        "source": _bytes_feature(_string(sample, "source", allow_empty=False)),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    # Deterministic map order: the same sample gives the same bytes (and shard sha256s).
    return example.SerializeToString(deterministic=True)


def encode_real(sample: Mapping, image_format: str = "png", jpeg_quality: int = 95) -> bytes:
    """Serialises a real photo ``{"image", "image_id", "source"}`` to a tf.train.Example.

    Args:
        sample: ``image`` uint8 [H, W, 3] RGB plus provenance strings.
        image_format: ``"png"`` (lossless, default) or ``"jpeg"`` (smaller; fine for photos
            that were JPEGs to begin with).
        jpeg_quality: JPEG quality in [1, 100] when ``image_format == "jpeg"``.
    """
    _check_format(image_format)
    _require(sample, REAL_KEYS)
    image = _array(sample, "image", np.uint8, 3, 3)
    feature = {
        "schema_version": _int_feature([SCHEMA_VERSION]),
        "kind": _bytes_feature(KIND_REAL.encode()),
        "height": _int_feature([image.shape[0]]),
        "width": _int_feature([image.shape[1]]),
        "image/encoded": _bytes_feature(_encode_image(image, image_format, jpeg_quality)),
        "image/format": _bytes_feature(image_format.encode()),
        "image_id": _bytes_feature(_string(sample, "image_id", allow_empty=False)),
        "source": _bytes_feature(_string(sample, "source", allow_empty=False)),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    # Deterministic map order: the same sample gives the same bytes (and shard sha256s).
    return example.SerializeToString(deterministic=True)


# --------------------------------------------------------------------------- decoders
_COMMON_SPEC = {
    "schema_version": tf.io.FixedLenFeature([], tf.int64),
    "kind": tf.io.FixedLenFeature([], tf.string),
    "height": tf.io.FixedLenFeature([], tf.int64),
    "width": tf.io.FixedLenFeature([], tf.int64),
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/format": tf.io.FixedLenFeature([], tf.string),
    "image_id": tf.io.FixedLenFeature([], tf.string),
    "source": tf.io.FixedLenFeature([], tf.string),
}
SYNTHETIC_FEATURES = {
    **_COMMON_SPEC,
    "depth/raw": tf.io.FixedLenFeature([], tf.string),
    "normals/raw": tf.io.FixedLenFeature([], tf.string),
    "instance/raw": tf.io.FixedLenFeature([], tf.string),
    "contour/encoded": tf.io.FixedLenFeature([], tf.string),
    "valid/encoded": tf.io.FixedLenFeature([], tf.string),
    "intrinsics": tf.io.FixedLenFeature([4], tf.float32),
    "scene_id": tf.io.FixedLenFeature([], tf.string),
}
REAL_FEATURES = dict(_COMMON_SPEC)


def _check_header(parsed, kind: str):
    """Graph-side guard: a record of another schema version or kind fails loudly."""
    return [
        tf.debugging.assert_equal(
            parsed["schema_version"],
            tf.constant(SCHEMA_VERSION, tf.int64),
            message=f"TFRecord schema_version differs from this code's SCHEMA_VERSION={SCHEMA_VERSION}",
        ),
        tf.debugging.assert_equal(
            parsed["kind"], tf.constant(kind), message=f"Expected a record of kind {kind!r}"
        ),
    ]


def _decode_rgb(parsed) -> tf.Tensor:
    image = tf.io.decode_image(parsed["image/encoded"], channels=3, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])


def decode_synthetic(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parses one serialized synthetic Example into the CONTRACTS.md sample tensors."""
    parsed = tf.io.parse_single_example(serialized, SYNTHETIC_FEATURES)
    with tf.control_dependencies(_check_header(parsed, KIND_SYNTHETIC)):
        height = tf.cast(parsed["height"], tf.int32)
    width = tf.cast(parsed["width"], tf.int32)

    def raw(key, dtype, channels=None):
        flat = tf.io.decode_raw(parsed[key], dtype, little_endian=True)
        shape = [height, width] if channels is None else [height, width, channels]
        return tf.reshape(flat, shape)

    def png_mask(key):
        return tf.io.decode_png(parsed[key], channels=1)[..., 0]

    depth = raw("depth/raw", tf.float32)
    return {
        "image": _decode_rgb(parsed),
        "depth": tf.ensure_shape(depth, [None, None]),
        "normals": tf.ensure_shape(raw("normals/raw", tf.float32, 3), [None, None, 3]),
        "instance": tf.ensure_shape(raw("instance/raw", tf.int32), [None, None]),
        "contour": png_mask("contour/encoded"),
        "valid": tf.cast(png_mask("valid/encoded"), tf.bool),
        "intrinsics": parsed["intrinsics"],
        "scene_id": parsed["scene_id"],
        "image_id": parsed["image_id"],
        "source": parsed["source"],
    }


def decode_real(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parses one serialized real-photo Example into ``{"image", "image_id", "source"}``."""
    parsed = tf.io.parse_single_example(serialized, REAL_FEATURES)
    with tf.control_dependencies(_check_header(parsed, KIND_REAL)):
        image = tf.identity(_decode_rgb(parsed))
    return {"image": image, "image_id": parsed["image_id"], "source": parsed["source"]}


def decode_synthetic_numpy(serialized: bytes) -> dict:
    """Eager convenience: decode one record to numpy arrays / Python strings."""
    out = {}
    for key, value in decode_synthetic(tf.constant(serialized)).items():
        value = value.numpy()
        out[key] = value.decode("utf-8") if isinstance(value, bytes) else value
    return out
