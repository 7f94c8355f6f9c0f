import json
import os

import pytest

from mtsyn_tf.data import schema, shards


@pytest.fixture
def records(make_sample):
    def build(n):
        return [schema.encode_synthetic(make_sample(seed=i, image_id=f"i{i}")) for i in range(n)]

    return build


def test_write_list_verify(tmp_path, records):
    out = str(tmp_path / "syn")
    paths = shards.write_shards(records(5), out, "train", 2, "synthetic", "fixture")
    assert [os.path.basename(p) for p in paths] == [
        "train-00000-of-00002.tfrecord",
        "train-00001-of-00002.tfrecord",
    ]
    shards.write_shards(records(1), out, "val", 4, "synthetic", "fixture")  # clamps to 1 shard
    manifest = shards.read_manifest(out)
    assert manifest["schema_version"] == schema.SCHEMA_VERSION
    assert manifest["kind"] == "synthetic" and manifest["source"] == "fixture"
    assert manifest["splits"]["train"]["num_records"] == 5
    assert [s["num_records"] for s in manifest["splits"]["train"]["shards"]] == [3, 2]
    assert len(manifest["splits"]["val"]["shards"]) == 1
    assert shards.list_shards(out, "train") == paths
    assert shards.verify_shards(out, "train") == 5
    assert not [f for f in os.listdir(out) if ".tmp" in f]


def test_overwrite_replaces_split_and_removes_stale_shards(tmp_path, records):
    out = str(tmp_path)
    shards.write_shards(records(3), out, "train", 3, "synthetic", "fixture")
    with pytest.raises(ValueError, match="already exists"):
        shards.write_shards(records(2), out, "train", 1, "synthetic", "fixture")
    shards.write_shards(records(2), out, "train", 1, "synthetic", "fixture", overwrite=True)
    assert sorted(f for f in os.listdir(out) if f.endswith(".tfrecord")) == [
        "train-00000-of-00001.tfrecord"
    ]
    with pytest.raises(ValueError, match="cannot add 'real'"):
        shards.write_shards(records(1), out, "val", 1, "real", "fixture")


def test_failure_mid_stream_leaves_nothing(tmp_path, records):
    def broken():
        yield records(1)[0]
        raise RuntimeError("converter crashed")

    with pytest.raises(RuntimeError):
        shards.write_shards(broken(), str(tmp_path), "train", 1, "synthetic", "fixture")
    assert os.listdir(tmp_path) == []


def test_clear_errors(tmp_path, records):
    with pytest.raises(ValueError, match="does not exist"):
        shards.list_shards(str(tmp_path / "nope"), "train")
    with pytest.raises(ValueError, match="holds no shards"):
        shards.list_shards(str(tmp_path), "train")
    with pytest.raises(ValueError, match="No records"):
        shards.write_shards([], str(tmp_path), "train", 1, "synthetic", "fixture")
    shards.write_shards(records(2), str(tmp_path), "train", 1, "synthetic", "fixture")
    with pytest.raises(ValueError, match=r"No shards for split 'test'.*\['train'\]"):
        shards.list_shards(str(tmp_path), "test")
    manifest_path = tmp_path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["schema_version"] = 999
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="schema_version=999"):
        shards.list_shards(str(tmp_path), "train")


def test_corrupt_shard_is_named(tmp_path, records):
    out = str(tmp_path)
    (path,) = shards.write_shards(records(2), out, "train", 1, "synthetic", "fixture")
    data = bytearray(open(path, "rb").read())
    data[30] ^= 0xFF
    open(path, "wb").write(bytes(data))
    with pytest.raises(ValueError, match="train-00000-of-00001.tfrecord"):
        shards.verify_shards(out, "train")
    os.remove(path)
    with pytest.raises(ValueError, match="missing.*train-00000-of-00001"):
        shards.list_shards(out, "train")
