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

from mtsyn_tf.cli import tf_error_reason
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
        what = "is not a directory" if os.path.exists(data_dir) else "does not exist"
        raise ValueError(
            f"Data directory {what}; expected a directory of shards with a manifest.json. "
            f"Received: data_dir={data_dir!r}"
        )
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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(
            f"Could not parse manifest {path} (expected the JSON written by "
            f"scripts/make_tfrecords.py or scripts/render.py): {e}"
        ) from None
    _check_manifest_structure(manifest, path)
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"Manifest {path} has schema_version={version!r}, but this code reads "
            f"SCHEMA_VERSION={SCHEMA_VERSION}. Regenerate the shards."
        )
    return manifest


def _check_manifest_structure(manifest, path: str) -> None:
    """The fields readers index into, so a damaged manifest fails here by name, not later."""
    problem = None
    if not isinstance(manifest, dict):
        problem = f"a JSON object, not {type(manifest).__name__}"
    elif not isinstance(manifest.get("splits", {}), dict):
        problem = '"splits" as an object'
    else:
        for split, entry in manifest.get("splits", {}).items():
            shards_ = entry.get("shards") if isinstance(entry, dict) else None
            if not isinstance(shards_, list) or not all(
                isinstance(s, dict) and {"name", "num_records", "sha256"} <= set(s) for s in shards_
            ):
                problem = (
                    f'split {split!r} as {{"shards": [{{"name", "num_records", "sha256"}}, ...]}}'
                )
                break
    if problem:
        raise ValueError(f"Manifest {path} is damaged: expected {problem}. Regenerate the shards.")


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


VERIFY_LEVELS = ("size", "sha256", "records")


def verify_shards(data_dir: str, split: str, level: str = "records") -> int:
    """Checks a split's shards against the manifest; returns the record count.

    ``level``: ``"size"`` compares file sizes (free: a truncated shard fails without being
    read); ``"sha256"`` also hashes every file (one full read); ``"records"`` also reads
    every record, checking framing, CRCs and the record counts.

    Raises:
        ValueError: naming the first shard whose size, checksum, record count or framing
            does not match the manifest.
    """
    if level not in VERIFY_LEVELS:
        raise ValueError(f"level must be one of {VERIFY_LEVELS}. Received: level={level!r}")
    paths = list_shards(data_dir, split)
    entries = read_manifest(data_dir)["splits"][split]["shards"]
    for shard, path in zip(entries, paths):
        size = os.path.getsize(path)
        if "num_bytes" in shard and size != shard["num_bytes"]:
            raise ValueError(
                f"Shard {path} is {size} bytes; the manifest says {shard['num_bytes']} "
                "(truncated or overwritten). Regenerate the shards."
            )
    total = 0
    for shard, path in zip(entries, paths):
        if level != "size" and _sha256(path) != shard["sha256"]:
            raise ValueError(
                f"Shard {path} does not match the sha256 recorded in the manifest "
                f"({str(shard['sha256'])[:12]}...): the file is corrupt or the manifest is "
                "stale. Regenerate the shards."
            )
        count = count_records(path) if level == "records" else shard["num_records"]
        if count != shard["num_records"]:
            raise ValueError(
                f"Shard {path} holds {count} records; the manifest says {shard['num_records']}."
            )
        total += count
    return total


def count_records(path: str) -> int:
    """Records in one TFRecord file; ValueError naming it on a truncated or CRC-bad record."""
    try:
        return sum(1 for _ in tf.data.TFRecordDataset(path))
    except tf.errors.OpError as e:
        raise ValueError(f"Corrupt record in shard {path}: {tf_error_reason(e)}") from None


def find_corrupt_shard(data_dir: str) -> None:
    """Reads every shard of every split in ``data_dir``; raises ValueError naming a bad one.

    Used after a ``DataLossError`` during training, whose message names no file. Record
    framing and CRCs are checked (not the sha256, which a shard rewritten along with its
    manifest legitimately changes).
    """
    for split in read_manifest(data_dir).get("splits", {}):
        for path in list_shards(data_dir, split):
            count_records(path)


def total_bytes(data_dir: str, split: str) -> int:
    return sum(os.path.getsize(p) for p in list_shards(data_dir, split))


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


def _write_or_explain(write, record, path: str) -> None:
    """``write(record)`` (or ``write()``); a failed write (disk full, I/O error) becomes a
    ValueError naming the shard, instead of TF's error about a temporary file."""
    try:
        if record is None:
            write()
        else:
            write(record)
    except (tf.errors.OpError, OSError) as e:
        reason = tf_error_reason(e) if isinstance(e, tf.errors.OpError) else e.strerror
        raise ValueError(
            f"Could not write shard {path} ({reason}); expected free space and a writable "
            "directory. Nothing was written for this split."
        ) from None


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
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(
            f"Output directory is a file; expected a directory for shards. "
            f"Received: output_dir={output_dir!r}"
        )
    created = not os.path.exists(output_dir)
    try:
        return _write_shards(records, output_dir, split, num_shards, kind, source, overwrite)
    except BaseException:
        # A directory this call created holds nothing complete: remove it (only if empty,
        # so nothing another writer put there is lost).
        if created and os.path.isdir(output_dir) and not os.listdir(output_dir):
            os.rmdir(output_dir)
        raise


def _write_shards(records, output_dir, split, num_shards, kind, source, overwrite) -> list[str]:
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
    os.makedirs(output_dir, exist_ok=True)
    num_shards = len(head)
    final = [os.path.join(output_dir, shard_name(split, i, num_shards)) for i in range(num_shards)]
    temps = [f"{path}.tmp-{os.getpid()}" for path in final]
    counts = [0] * num_shards
    writers = []
    try:
        writers += [tf.io.TFRecordWriter(path) for path in temps]
        for i, record in enumerate(itertools.chain(head, iterator)):
            if not isinstance(record, bytes):
                raise ValueError(
                    f"Record {i} for split {split!r} must be serialized bytes. "
                    f"Received: {type(record).__name__}"
                )
            _write_or_explain(writers[i % num_shards].write, record, final[i % num_shards])
            counts[i % num_shards] += 1
        for writer, path in zip(writers, final):
            _write_or_explain(writer.close, None, path)
    except BaseException:
        for writer, tmp in zip(writers, temps):
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - a full disk fails close() too; clean up anyway
                pass
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
            {
                "name": os.path.basename(p),
                "num_records": c,
                "num_bytes": os.path.getsize(p),
                "sha256": _sha256(p),
            }
            for p, c in zip(final, counts)
        ],
    }
    write_text_atomic(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return [os.path.abspath(p) for p in final]
