"""Odd but valid photos are converted, not refused: 16-bit, grayscale, palette, alpha, CMYK.

Three decoders see user photos: OpenCV in ``real_domain.read_photo`` (make_tfrecords),
``tf.io.decode_image`` in the real-domain stream (training on a photo folder) and in
``export.predictor.load_image`` (predict.py). Each must give the same 8-bit RGB content.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mtsyn_tf.data import real_domain
from mtsyn_tf.export.predictor import load_image

_RGB = (np.random.default_rng(0).random((24, 32, 3)) * 255).astype(np.uint8)
_GRAY = _RGB[..., 0]
# JPEG at quality 95 changes values by a few levels (8x8 DCT quantisation); CMYK adds one
# more rounding per channel. 6 levels of mean |error| is far below a wrong conversion
# (inverted CMYK, swapped channels: ~85 levels on uniform random pixels).
_JPEG_MEAN_ABS = 6.0


def _encode(array: np.ndarray, fmt: str, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    image.save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _png16() -> bytes:
    import cv2

    return cv2.imencode(".png", (_RGB.astype(np.uint16) * 257)[..., ::-1])[1].tobytes()


CASES = {
    # name: (file bytes, expected RGB, mean-abs tolerance)
    "rgb16.png": (_png16, _RGB, 0.0),
    "gray.png": (lambda: _encode(_GRAY, "PNG"), np.repeat(_GRAY[..., None], 3, -1), 0.0),
    "rgba.png": (lambda: _encode(_RGB, "PNG", "RGBA"), _RGB, 0.0),
    "gray_alpha.png": (
        lambda: _encode(_GRAY, "PNG", "LA"),
        np.repeat(_GRAY[..., None], 3, -1),
        0.0,
    ),
    "cmyk.jpg": (lambda: _encode(_RGB, "JPEG", "CMYK"), _RGB, _JPEG_MEAN_ABS),
    "gray.jpg": (
        lambda: _encode(_GRAY, "JPEG"),
        np.repeat(_GRAY[..., None], 3, -1),
        _JPEG_MEAN_ABS,
    ),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("odd_photos")
    for name, (make, _, _) in CASES.items():
        (root / name).write_bytes(make())
    return root


def _mean_abs(a, b) -> float:
    return float(np.abs(a.astype(np.int32) - b.astype(np.int32)).mean())


@pytest.mark.parametrize("name", sorted(CASES))
def test_opencv_reader_converts(folder, name):
    real_domain.check_photo_header(str(folder / name))
    image = real_domain.read_photo(str(folder / name))
    assert image.shape == (24, 32, 3) and image.dtype == np.uint8
    assert _mean_abs(image, CASES[name][1]) <= CASES[name][2]


@pytest.mark.parametrize("name", sorted(CASES))
def test_predict_loader_converts(folder, name):
    """load_image stretches to S×S; at S = the photo's own size nothing is resampled."""
    image = load_image(str(folder / name), 24)  # square, so compare the left 24 columns' mean
    assert image.shape == (24, 24, 3)
    assert np.isfinite(image).all() and 0.0 <= image.min() and image.max() <= 1.0
    expected = CASES[name][1].astype(np.float32).mean(axis=(0, 1)) / 255.0
    # Channel means survive any resampling; tolerance: the JPEG error bound, in [0, 1] units.
    np.testing.assert_allclose(image.mean(axis=(0, 1)), expected, atol=(CASES[name][2] + 1) / 255)
    if "gray" in name:
        np.testing.assert_array_equal(image[..., 0], image[..., 1])


def test_training_stream_reads_the_folder(folder):
    """The tf.data real domain decodes every odd file (grey ones replicated to 3 channels)."""
    stream = real_domain.make_real_dataset(str(folder), image_size=16, seed=0, jitter=False)
    for example in stream.take(2 * len(CASES)):
        image = example["image"].numpy()
        assert image.shape == (16, 16, 3) and np.isfinite(image).all()
