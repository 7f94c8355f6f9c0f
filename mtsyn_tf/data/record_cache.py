"""Decoded training records held in memory, read in exactly the order the shards give.

Decoding a synthetic record (PNG image and masks, raw depth and normals) costs ~3 ms of
CPU and a real photo from PNG shards ~5 ms; on a 2-core machine that work is taken from
the train step it overlaps (issue 13). A small data set (the demo's 192 renders, the
embedded photos) fits in memory decoded, and then a training example costs only its
random augmentation.

``RecordSource`` hides which of the two a pipeline reads. A pipeline is written once
against it: ``handles()`` (one per shard), ``records(handle)`` (one item per record) and
``decode(item)`` or ``view(item)``. On disk a handle is a shard's path, an item its
serialized record and ``decode`` parses it. Cached, a handle is the shard's index, an
item the record's index and ``decode`` slices the decoded arrays; ``view`` does not even
slice: it names the record's rows in the stacked arrays, so a crop copies only the
pixels it keeps (copying the whole record first cost more than the crop, issue 13).
Shuffles and deterministic interleaves only move items around, never look at them, so
the same seed gives the *same* examples in the same order either way: caching changes
speed and memory, never the batches (a test checks this bit for bit, and a run may
resume with the cache on or off).

Records of different sizes are zero-padded to the largest and sliced back on reading.
Spatial maps are stacked row after row (``[records × height, width, ...]``), so record
``i`` is rows ``i·height ... i·height + h - 1``.
The cache is only built when it fits ``cache_mb`` (padding included); otherwise the
source reads from disk and says so in one log line.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
import tensorflow as tf
from absl import logging

# Memory a training stream may hold decoded (MB, 2**20 bytes). The demo's synthetic set
# (192 records of 227², 27 bytes a pixel: uint8 photo + float32 labels) takes ~255 MB;
# the embedded photos at Places365's 256 px short side ~2.3 MB (padded to the widest).
DEFAULT_CACHE_MB = 1024
# Encoded bytes per decoded byte can exceed 1 only through the stored fields a pipeline
# drops (e.g. synthetic instance ids); shards larger than this multiple of the budget
# cannot fit decoded, so they are not even read to find out.
_MAX_ENCODED_PER_DECODED = 2


def _check_budget(cache_mb: float) -> None:
    if not cache_mb >= 0:  # also refuses NaN
        raise ValueError(
            f"cache_mb must be >= 0 (0 turns the in-memory cache off). Received: "
            f"cache_mb={cache_mb}"
        )


class RecordView(NamedTuple):
    """A decoded record as a window of larger arrays: ``fields[key][first_row + y, x]``.

    Spatial keys hold the record in rows ``first_row ... first_row + height - 1`` and
    columns ``0 ... width - 1``; other keys are the record's own values.
    """

    fields: dict
    first_row: tf.Tensor  # int32 scalar
    height: tf.Tensor  # int32 scalar
    width: tf.Tensor  # int32 scalar

    @classmethod
    def whole(cls, fields: dict, spatial_key: str) -> RecordView:
        """A record that is its own arrays: all of ``fields[spatial_key]``, from row 0."""
        size = tf.shape(fields[spatial_key])
        return cls(fields, tf.constant(0, tf.int32), size[0], size[1])


class RecordSource:
    """The records of ``files`` as ``decode`` makes them: from disk, or decoded in memory.

    Args:
        files: shard paths, in the order the pipeline lists them.
        decode: serialized record -> dict of tensors (traceable; used inside tf.data).
        spatial_keys: keys whose first two dimensions are the record's height and width
            (padded in the cache); other keys must have one fixed shape across records.
        cache_mb: memory budget of the decoded copy; 0 reads from disk every time.
        what: the data's name in log lines ("synthetic train", "real photos").
    """

    def __init__(self, files, decode, spatial_keys, cache_mb: float, what: str):
        _check_budget(cache_mb)
        self.files = list(files)
        self.what = what
        self._decode = decode
        self._spatial = tuple(spatial_keys)
        self._arrays = None  # key -> stacked (padded) tensor, when cached
        self._height = 0  # rows per record in the stacked spatial arrays
        self.nbytes = 0
        budget = int(cache_mb * 2**20)
        if budget > 0:
            self._try_cache(budget, cache_mb)

    @property
    def cached(self) -> bool:
        return self._arrays is not None

    # === The three calls a pipeline makes ===
    def handles(self) -> tf.data.Dataset:
        """One element per shard, in ``files`` order: its path, or its index when cached."""
        if not self.cached:
            return tf.data.Dataset.from_tensor_slices(self.files)
        return tf.data.Dataset.range(len(self.files))

    def records(self, handle) -> tf.data.Dataset:
        """The items of one shard, in file order (the ``interleave`` function)."""
        if not self.cached:
            return tf.data.TFRecordDataset(handle)
        start = tf.gather(self._shard_starts, handle)
        stop = tf.gather(self._shard_starts, handle + 1)
        return tf.data.Dataset.range(start, stop)

    def decode(self, item) -> dict:
        """The decoded record of an item (``decode(serialized)``, or a slice of the cache)."""
        fields, first_row, height, width = self.view(item)
        if not self.cached:
            return fields
        out = dict(fields)
        for key in self._spatial:
            out[key] = fields[key][first_row : first_row + height, :width]
        return out

    def view(self, item) -> RecordView:
        """The decoded record of an item as a ``RecordView``, copying nothing when cached."""
        if not self.cached:
            return RecordView.whole(self._decode(item), self._spatial[0])
        fields = {
            key: array if key in self._spatial else tf.gather(array, item)
            for key, array in self._arrays.items()
        }
        height, width = tf.unstack(tf.gather(self._sizes, item))
        first_row = tf.cast(item, tf.int32) * self._height
        return RecordView(fields, first_row, height, width)

    # === Building the cache ===
    def _try_cache(self, budget: int, cache_mb: float) -> None:
        encoded = sum(tf.io.gfile.stat(f).length for f in self.files)
        if encoded > _MAX_ENCODED_PER_DECODED * budget:
            self._decline(
                f"its shards alone hold {encoded / 2**20:.0f} MB, over "
                f"{_MAX_ENCODED_PER_DECODED}x the {cache_mb:.0f} MB budget"
            )
            return
        per_shard, decoded, size, row_bytes = [], [], np.zeros(2, np.int64), 0
        for path in self.files:
            count = 0
            records = tf.data.TFRecordDataset(path).map(
                self._decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
            )
            for example in records.as_numpy_iterator():
                size = np.maximum(size, example[self._spatial[0]].shape[:2])
                row_bytes = max(row_bytes, self._padded_bytes(example, size))
                decoded.append(example)
                count += 1
                if row_bytes * len(decoded) > budget:
                    self._decline(f"decoded it takes more than the {cache_mb:.0f} MB budget")
                    return
            per_shard.append(count)
        if not decoded:
            return  # nothing to cache; the disk path reports the empty split itself
        self._stack(decoded, per_shard, size)
        logging.info(
            "Holding %d decoded %s records in memory (%.0f MB of the %.0f MB cache budget).",
            len(decoded),
            self.what,
            self.nbytes / 2**20,
            cache_mb,
        )

    def _padded_bytes(self, example: dict, size) -> int:
        total = 0
        for key, value in example.items():
            if key in self._spatial:
                total += int(np.prod(size)) * int(np.prod(value.shape[2:])) * value.itemsize
            else:
                total += value.nbytes
        return total

    def _stack(self, decoded: list, per_shard: list, size) -> None:
        height, width = (int(s) for s in size)
        self._height = height
        self._sizes = tf.constant(
            [example[self._spatial[0]].shape[:2] for example in decoded], tf.int32
        )
        arrays = {}
        for key in list(decoded[0]):
            first = decoded[0][key]
            spatial = key in self._spatial
            lead = (len(decoded), height, width) if spatial else (len(decoded),)
            stacked = np.zeros(lead + first.shape[2 if spatial else 0 :], first.dtype)
            for i, example in enumerate(decoded):
                value = example.pop(key)  # frees the decoded copy as the stack fills
                if spatial:
                    stacked[i, : value.shape[0], : value.shape[1]] = value
                elif value.shape != first.shape:
                    raise ValueError(
                        f"{self.what}: `{key}` has shape {value.shape} in one record and "
                        f"{first.shape} in another; only the spatial keys {self._spatial} "
                        "may vary."
                    )
                else:
                    stacked[i] = value
            if spatial:  # records row after row: a crop is a block of rows, no gather
                stacked = stacked.reshape((-1,) + stacked.shape[2:])
            arrays[key] = tf.constant(stacked)
            self.nbytes += stacked.nbytes
        self._shard_starts = tf.constant(np.concatenate([[0], np.cumsum(per_shard)]), tf.int64)
        self._arrays = arrays

    def _decline(self, reason: str) -> None:
        logging.warning(
            "Not caching the %s records in memory (%s; --data_cache_mb): decoding them from "
            "%s every step instead.",
            self.what,
            reason,
            os.path.dirname(self.files[0]) if self.files else "disk",
        )
