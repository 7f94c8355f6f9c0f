"""A PNG contact sheet of samples, written next to every dataset to eyeball conventions.

Rows are samples; columns are RGB | depth | normals | contours, coloured by
``mtsyn_tf.visualize`` (MAGMA inverse depth, near = bright, scaled per sample to its
2nd–98th percentile; normals as ``(n + 1) / 2`` RGB in the OpenCV frame, so a wall facing
the camera is violet-blue; contours white on black; invalid pixels black). Real samples
(image only) show the RGB column and leave the rest grey. Renders that kept their
undenoised image (``"image_noisy"``, see ``mtsyn_tf.render.denoise``) get it as a second
column, RGB noisy | RGB denoised | ..., at the same exposure. Renders that also carry a
many-sample reference of a crop (``"image_reference_crop"`` inside ``"reference_crop_box"``
= (top, left, size), see ``mtsyn_tf.render.mitsuba_backend``) end their row with three
enlarged crops of that box: noisy | denoised | reference, so the denoiser's result can be
judged against what more samples would give."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from mtsyn_tf.io_utils import write_png
from mtsyn_tf.visualize import colorize_contour, colorize_depth, colorize_normals, to_uint8_rgb

_TILE_HEIGHT = 160
_GAP = 4


def _to_numpy(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _fit(tile: np.ndarray, width: int) -> np.ndarray:
    return cv2.resize(tile, (width, _TILE_HEIGHT), interpolation=cv2.INTER_NEAREST)


def _crop_tiles(sample: Mapping) -> list[np.ndarray]:
    """Noisy | denoised | reference crops of ``reference_crop_box`` (grey when absent)."""
    reference = sample.get("image_reference_crop")
    if reference is None:
        return [np.full((2, 2, 3), 128, np.uint8)] * 3
    top, left, size = (int(v) for v in sample["reference_crop_box"])
    window = (slice(top, top + size), slice(left, left + size))
    noisy = sample.get("image_noisy")
    noisy = to_uint8_rgb(noisy)[window] if noisy is not None else np.full_like(reference, 128)
    return [noisy, to_uint8_rgb(sample["image"])[window], to_uint8_rgb(reference)]


def _row(sample: Mapping, noisy_column: bool, crop_columns: bool = False) -> np.ndarray:
    image = to_uint8_rgb(sample["image"])
    height, width = image.shape[:2]
    tile_width = max(1, round(_TILE_HEIGHT * width / height))
    blank = np.full((height, width, 3), 128, np.uint8)
    tiles = [image]
    if noisy_column:
        noisy = sample.get("image_noisy")
        tiles.insert(0, to_uint8_rgb(noisy) if noisy is not None else blank)
    tiles.append(colorize_depth(sample["depth"]) if "depth" in sample else blank)
    tiles.append(colorize_normals(sample["normals"]) if "normals" in sample else blank)
    tiles.append(colorize_contour(sample["contour"]) if "contour" in sample else blank)
    widths = [tile_width] * len(tiles)
    if crop_columns:
        crops = _crop_tiles(sample)
        tiles += crops
        widths += [_TILE_HEIGHT] * len(crops)  # square crops, enlarged
    gap = np.zeros((_TILE_HEIGHT, _GAP, 3), np.uint8)
    parts = []
    for tile, tile_w in zip(tiles, widths):
        parts += [_fit(tile, tile_w), gap]
    return np.concatenate(parts[:-1], axis=1)


def _unbatch(samples) -> list[Mapping]:
    """Accepts a list of sample dicts or one dict of batched arrays [B, ...]."""
    if isinstance(samples, Mapping):
        size = len(_to_numpy(samples["image"]))
        return [{k: _to_numpy(v)[i] for k, v in samples.items()} for i in range(size)]
    return list(samples)


def write_sample_grid(samples: Sequence[Mapping] | Mapping, path: str, max_rows: int = 8) -> str:
    """Writes the contact sheet PNG atomically; returns ``path``.

    Args:
        samples: sample dicts (numpy or tensors; uint8 or [0, 1] float images), or one
            batch dict such as ``make_eval_dataset`` yields.
        path: output ``.png`` path.
        max_rows: at most this many samples are drawn.
    """
    samples = _unbatch(samples)[:max_rows]
    noisy_column = any("image_noisy" in s for s in samples)
    crop_columns = any("image_reference_crop" in s for s in samples)
    rows = [_row(s, noisy_column, crop_columns) for s in samples]
    if not rows:
        raise ValueError(f"No samples to draw into {path!r}.")
    width = max(r.shape[1] for r in rows)
    padded = []
    for row in rows:
        pad = np.zeros((_TILE_HEIGHT, width - row.shape[1], 3), np.uint8)
        padded += [np.concatenate([row, pad], axis=1), np.zeros((_GAP, width, 3), np.uint8)]
    return write_png(path, np.concatenate(padded[:-1], axis=0))
