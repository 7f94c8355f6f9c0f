import os

import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.data import schema, shards, writer


def test_write_dataset_synthetic(tmp_path, make_sample):
    samples = (make_sample(seed=i, image_id=f"i{i}") for i in range(3))
    out = writer.write_dataset(
        samples, str(tmp_path), "train", 2, "synthetic", "fixture", grid_rows=2
    )
    assert len(out["shards"]) == 2 and out["sample_grid"].endswith("train-samples.png")
    assert shards.verify_shards(str(tmp_path), "train") == 3
    first = next(iter(tf.data.TFRecordDataset(out["shards"][0])))
    decoded = schema.decode_synthetic_numpy(first.numpy())
    np.testing.assert_array_equal(decoded["depth"], make_sample(seed=0)["depth"])


def test_bad_sample_leaves_nothing(tmp_path, make_sample):
    bad = make_sample(seed=1, image_id="broken")
    bad["depth"][0, -1] = np.nan
    with pytest.raises(ValueError, match="image_id='broken'"):
        writer.write_dataset(
            iter([make_sample(), bad]), str(tmp_path), "train", 1, "synthetic", "f"
        )
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="stored losslessly as PNG"):
        writer.write_dataset([], str(tmp_path), "train", 1, "synthetic", "f", image_format="jpeg")
