"""Frozen features of a model's base network, and the fixed-size pooling probes use.

Linear probes (Zhang et al. 2017's protocol, as implemented in VISSL) average-pool each
tap to a grid whose size keeps the flattened feature near 9k dimensions. We use PyTorch
``AdaptiveAvgPool2d`` bins (bin i covers ``floor(i·h/g) .. ceil((i+1)·h/g)``) and pick
``g = round(sqrt(9216 / channels))``, which for the paper's AlexNet gives:

=======  ==========  ====  ==========================
tap      map         grid  dimensions
=======  ==========  ====  ==========================
conv1    55×55×96    10    96×10×10  = 9600
conv2    27×27×256   6     256×6×6   = 9216
conv3    13×13×384   5     384×5×5   = 9600
conv4    13×13×384   5     384×5×5   = 9600
conv5    13×13×256   6     256×6×6   = 9216
=======  ==========  ====  ==========================

Narrower presets get larger grids (still ≈9k dims, never larger than the map itself).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from mtsyn_tf.evaluation.loading import prepare_images

PROBE_TARGET_DIMS = 9216


def square_resize(image, size: int) -> np.ndarray:
    """Centre square crop of an image (uint8 or float in [0, 1]) resized to ``size``²: float32."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] < 3:
        raise ValueError(f"image must be [H, W, 3]. Received shape: {image.shape}")
    image = image[..., :3]
    if image.dtype == np.uint8:
        image = image.astype(np.float32) / 255.0
    h, w = image.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    crop = np.ascontiguousarray(image[y0 : y0 + side, x0 : x0 + side], dtype=np.float32)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return np.clip(cv2.resize(crop, (size, size), interpolation=interp), 0.0, 1.0)


def extract_features(
    model, images, taps, batch_size: int = 16, grayscale: bool = False
) -> dict[str, np.ndarray]:
    """Runs the frozen base on float32 [N, S, S, 3] images; returns ``{tap: [N, h, w, c]}``."""
    x = prepare_images(images, grayscale)
    size = model.image_size
    if x.shape[1:3] != (size, size):
        raise ValueError(
            f"The model takes {size}×{size} images. Received shape: {x.shape}; resize with "
            "square_resize first."
        )
    taps = list(taps)
    out = {t: [] for t in taps}
    for start in range(0, len(x), batch_size):
        features = model.backbone(x[start : start + batch_size], training=False)
        for t in taps:
            if t not in features:
                raise ValueError(
                    f"Unknown tap. Expected one of {sorted(features)}. Received: {t!r}"
                )
            out[t].append(np.asarray(features[t]))
    return {t: np.concatenate(v) for t, v in out.items()}


def probe_grid_size(height: int, channels: int, target_dims: int = PROBE_TARGET_DIMS) -> int:
    """Pooling grid side g so that ``channels·g²`` ≈ ``target_dims`` (at most the map size)."""
    return int(max(1, min(height, round(math.sqrt(target_dims / channels)))))


def adaptive_pool_matrix(size: int, grid: int) -> np.ndarray:
    """[grid, size] averaging weights of PyTorch's AdaptiveAvgPool along one axis."""
    m = np.zeros((grid, size), np.float32)
    for i in range(grid):
        start = (i * size) // grid
        end = -((-(i + 1) * size) // grid)
        m[i, start:end] = 1.0 / (end - start)
    return m


def adaptive_avg_pool(features, grid: int) -> np.ndarray:
    """[N, h, w, c] → [N, grid, grid, c] adaptive average pooling (numpy reference)."""
    f = np.asarray(features, dtype=np.float32)
    if f.ndim != 4:
        raise ValueError(f"features must be [N, h, w, c]. Received shape: {f.shape}")
    rows = adaptive_pool_matrix(f.shape[1], grid)
    cols = adaptive_pool_matrix(f.shape[2], grid)
    return np.einsum("ih,nhwc,jw->nijc", rows, f, cols)
