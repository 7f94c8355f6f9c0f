"""Sharded TFRecord files plus a manifest.json that says what they hold.

Layout of a data directory::

    <data_dir>/manifest.json
    <data_dir>/<split>-00000-of-0000N.tfrecord
    ...

Every file is written under a temporary name and moved into place with ``os.replace``
only once complete, so a crash never leaves a half-written shard or manifest behind.
The manifest records the schema version, kind (synthetic | real), source and, per
split, each shard's name, record count and sha256, so readers can refuse data written
by another schema version and ``verify_shards`` can detect corruption by file name.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterable

import tensorflow as tf

from mtsyn_tf.data.schema import KIND_REAL, KIND_SYNTHETIC, SCHEMA_VERSION
from mtsyn_tf.io_utils import write_text_atomic

MANIFEST_NAME = "manifest.json"
KINDS = (KIND_SYNTHETIC, KIND_REAL)


def shard_name(split: str, index: int, num_shards: int) -> str:
    return f"{split}-{index:05d}-of-{num_shards:05d}.tfrecord"


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(data_dir: str) -> dict:
    """Loads ``<data_dir>/manifest.json`` and checks its schema version.

    Raises:
        ValueError: if the directory or manifest is missing, unparsable, or written by a
            different schema version.
    """
    if not os.path.isdir(data_dir):
        raise ValueError(f"Data directory does not exist. Received: data_dir={data_dir!r}")
    path = os.path.join(data_dir, MANIFEST_NAME)
    if not os.path.isfile(path):
        present = sorted(f for f in os.listdir(data_dir) if f.endswith(".tfrecord"))
        hint = (
            f" It holds {len(present)} .tfrecord files but no manifest; rewrite it with "
            "scripts/make_tfrecords.py."
            if present
            else " It holds no shards; write them with scripts/make_tfrecords.py."
        )
        raise ValueError(f"Missing {path}.{hint}")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"Could not parse manifest {path}: {e}") from e
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"Manifest {path} has schema_version={version!r}, but this code reads "
            f"SCHEMA_VERSION={SCHEMA_VERSION}. Regenerate the shards."
        )
    return manifest


def list_shards(data_dir: str, split: str) -> list[str]:
    """Absolute paths of the shards of ``split`` listed in the manifest, in order.

    Raises:
        ValueError: naming the directory when it has no manifest, the split is absent, or
            a listed shard file is missing.
    """
    manifest = read_manifest(data_dir)
    splits = manifest.get("splits", {})
    if split not in splits or not splits[split]["shards"]:
        raise ValueError(
            f"No shards for split {split!r} in {data_dir!r}. Available splits: {sorted(splits)}"
        )
    paths = []
    for shard in splits[split]["shards"]:
        path = os.path.join(data_dir, shard["name"])
        if not os.path.isfile(path):
            raise ValueError(f"Shard listed in the manifest is missing: {path}")
        paths.append(path)
    return paths


def verify_shards(data_dir: str, split: str) -> int:
    """Checks each shard's sha256 and reads every record; returns the record count.

    Raises:
        ValueError: naming the first shard whose checksum, record count or framing is bad.
    """
    manifest = read_manifest(data_dir)
    total = 0
    for shard, path in zip(manifest["splits"][split]["shards"], list_shards(data_dir, split)):
        if _sha256(path) != shard["sha256"]:
            raise ValueError(f"Shard {path} does not match the sha256 recorded in the manifest.")
        try:
            count = sum(1 for _ in tf.data.TFRecordDataset(path))
        except tf.errors.OpError as e:
            raise ValueError(f"Corrupt record in shard {path}: {e.message}") from None
        if count != shard["num_records"]:
            raise ValueError(
                f"Shard {path} holds {count} records; the manifest says {shard['num_records']}."
            )
        total += count
    return total


def _check_manifest_compatible(manifest: dict, kind: str, source: str, data_dir: str) -> None:
    if manifest.get("kind") != kind:
        raise ValueError(
            f"{data_dir!r} already holds {manifest.get('kind')!r} shards; cannot add {kind!r} "
            "shards to the same directory."
        )
    if manifest.get("source") != source:
        raise ValueError(
            f"{data_dir!r} already holds shards from source {manifest.get('source')!r}; "
            f"received source={source!r}. Use one directory per source."
        )


def write_shards(
    records: Iterable[bytes],
    output_dir: str,
    split: str,
    num_shards: int,
    kind: str,
    source: str,
    overwrite: bool = False,
) -> list[str]:
    """Writes serialized Examples round-robin into ``num_shards`` TFRecord files.

    Records are streamed (never all held in memory). If fewer records than
    ``num_shards`` arrive, fewer shards are written so none is empty. The manifest is
    updated last, atomically; other splits already in it are kept.

    Returns:
        Absolute paths of the written shards.

    Raises:
        ValueError: for a bad argument, an empty ``records``, an existing split without
            ``overwrite``, or a directory that already holds another kind/source.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}. Received: kind={kind!r}")
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1. Received: num_shards={num_shards}")
    if not split or "/" in split or "-" in split:
        raise ValueError(
            f"split must be a plain name without '/' or '-'. Received: split={split!r}"
        )
    os.makedirs(output_dir, exist_ok=True)
    manifest_path = os.path.join(output_dir, MANIFEST_NAME)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "source": source,
        "splits": {},
    }
    if os.path.exists(manifest_path):
        manifest = read_manifest(output_dir)
        _check_manifest_compatible(manifest, kind, source, output_dir)
        if split in manifest["splits"] and not overwrite:
            raise ValueError(
                f"Split {split!r} already exists in {manifest_path}; pass overwrite=True to "
                "replace it."
            )

    iterator = iter(records)
    head = list(itertools.islice(iterator, num_shards))
    if not head:
        raise ValueError(f"No records to write for split {split!r} into {output_dir!r}.")
    num_shards = len(head)
    final = [os.path.join(output_dir, shard_name(split, i, num_shards)) for i in range(num_shards)]
    temps = [f"{path}.tmp-{os.getpid()}" for path in final]
    counts = [0] * num_shards
    writers = [tf.io.TFRecordWriter(path) for path in temps]
    try:
        for i, record in enumerate(itertools.chain(head, iterator)):
            if not isinstance(record, bytes):
                raise ValueError(
                    f"Record {i} for split {split!r} must be serialized bytes. "
                    f"Received: {type(record).__name__}"
                )
            writers[i % num_shards].write(record)
            counts[i % num_shards] += 1
        for writer in writers:
            writer.close()
    except BaseException:
        for writer, tmp in zip(writers, temps):
            writer.close()
            if os.path.exists(tmp):
                os.remove(tmp)
        raise

    old = manifest["splits"].get(split, {}).get("shards", [])
    for tmp, path in zip(temps, final):
        os.replace(tmp, path)
    for shard in old:  # Stale shards of a replaced split (e.g. a different shard count).
        stale = os.path.join(output_dir, shard["name"])
        if stale not in final and os.path.exists(stale):
            os.remove(stale)
    manifest["splits"][split] = {
        "num_records": sum(counts),
        "shards": [
            {"name": os.path.basename(p), "num_records": c, "sha256": _sha256(p)}
            for p, c in zip(final, counts)
        ],
    }
    write_text_atomic(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return [os.path.abspath(p) for p in final]
