"""A PNG contact sheet of samples, written next to every dataset to eyeball conventions.

Rows are samples; columns are RGB | depth | normals | contours. Depth is shown as
colourised inverse depth (near = bright) normalised per sample over valid pixels;
normals as ``(n + 1) / 2`` RGB (OpenCV frame: x right = red, y down = green, z forward =
blue, so a wall facing the camera is violet-blue); contours white on black; invalid
pixels black. Real samples (image only) show the RGB column and leave the rest grey.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

_TILE_HEIGHT = 160
_GAP = 4


def _to_numpy(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _rgb(image) -> np.ndarray:
    image = _to_numpy(image)
    if image.dtype != np.uint8:
        image = np.clip(np.round(image.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    return image


def colorize_depth(depth) -> np.ndarray:
    """Inverse depth → MAGMA colours (uint8 RGB); invalid (<= 0 or non-finite) → black."""
    depth = np.squeeze(_to_numpy(depth)).astype(np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    inverse = np.zeros_like(depth)
    inverse[valid] = 1.0 / depth[valid]
    if valid.any():
        lo, hi = inverse[valid].min(), inverse[valid].max()
        inverse = (inverse - lo) / max(hi - lo, 1e-12)
    colour = cv2.applyColorMap(np.uint8(np.clip(inverse, 0, 1) * 255), cv2.COLORMAP_MAGMA)
    colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
    colour[~valid] = 0
    return colour


def colorize_normals(normals) -> np.ndarray:
    """Unit normals → ``(n + 1) / 2`` as uint8 RGB; zero (unknown) normals → black."""
    normals = _to_numpy(normals).astype(np.float64)
    colour = np.uint8(np.clip((normals + 1.0) * 0.5, 0, 1) * 255)
    colour[np.linalg.norm(normals, axis=-1) == 0] = 0
    return colour


def colorize_contour(contour) -> np.ndarray:
    edges = np.squeeze(_to_numpy(contour)) > 0
    return np.repeat((edges * 255).astype(np.uint8)[..., None], 3, axis=-1)


def _fit(tile: np.ndarray, width: int) -> np.ndarray:
    return cv2.resize(tile, (width, _TILE_HEIGHT), interpolation=cv2.INTER_NEAREST)


def _row(sample: Mapping) -> np.ndarray:
    image = _rgb(sample["image"])
    height, width = image.shape[:2]
    tile_width = max(1, round(_TILE_HEIGHT * width / height))
    blank = np.full((height, width, 3), 128, np.uint8)
    tiles = [image]
    tiles.append(colorize_depth(sample["depth"]) if "depth" in sample else blank)
    tiles.append(colorize_normals(sample["normals"]) if "normals" in sample else blank)
    tiles.append(colorize_contour(sample["contour"]) if "contour" in sample else blank)
    gap = np.zeros((_TILE_HEIGHT, _GAP, 3), np.uint8)
    parts = []
    for tile in tiles:
        parts += [_fit(tile, tile_width), gap]
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
    rows = [_row(s) for s in _unbatch(samples)[:max_rows]]
    if not rows:
        raise ValueError(f"No samples to draw into {path!r}.")
    if not path.lower().endswith(".png"):
        raise ValueError(f"Sample grid path must end in .png. Received: path={path!r}")
    width = max(r.shape[1] for r in rows)
    padded = []
    for row in rows:
        pad = np.zeros((_TILE_HEIGHT, width - row.shape[1], 3), np.uint8)
        padded += [np.concatenate([row, pad], axis=1), np.zeros((_GAP, width, 3), np.uint8)]
    grid = np.concatenate(padded[:-1], axis=0)
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"PNG encoding failed for {path!r}.")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(buffer.tobytes())
    os.replace(tmp, path)
    return path
