"""One call from numpy samples to a finished dataset directory: shards + manifest + grid.

Converters (Hypersim, SceneNet RGB-D, our renderer, real-photo folders) all end here,
so every dataset on disk has the same layout and a sample grid to eyeball.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from mtsyn_tf.data import sample_grid, schema, shards


def write_dataset(
    samples: Iterable[Mapping],
    output_dir: str,
    split: str,
    num_shards: int,
    kind: str,
    source: str,
    overwrite: bool = False,
    grid_rows: int = 8,
    image_format: str = "png",
) -> dict:
    """Encodes and shards ``samples``; writes ``<output_dir>/<split>-samples.png``.

    Args:
        samples: synthetic or real sample dicts (see docs/CONTRACTS.md), streamed.
        kind: "synthetic" or "real" (selects ``encode_synthetic`` / ``encode_real``).
        image_format: "png" or "jpeg"; only real photos may use "jpeg".
        grid_rows: how many of the first samples to draw into the grid (0: no grid).

    Returns:
        ``{"shards": [...paths], "sample_grid": path or None}``.
    """
    if kind == schema.KIND_SYNTHETIC:
        if image_format != "png":
            raise ValueError(
                f"Synthetic images are stored losslessly as PNG. Received: image_format={image_format!r}"
            )
        encode = schema.encode_synthetic
    elif kind == schema.KIND_REAL:

        def encode(sample):
            return schema.encode_real(sample, image_format=image_format)

    else:
        raise ValueError(f"kind must be 'synthetic' or 'real'. Received: kind={kind!r}")
    preview: list[Mapping] = []

    def records():
        for sample in samples:
            if len(preview) < grid_rows:
                preview.append(sample)
            yield encode(sample)

    paths = shards.write_shards(records(), output_dir, split, num_shards, kind, source, overwrite)
    grid = None
    if preview:
        grid = sample_grid.write_sample_grid(
            preview, os.path.join(output_dir, f"{split}-samples.png"), max_rows=grid_rows
        )
    return {"shards": paths, "sample_grid": grid}
