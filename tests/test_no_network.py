"""The suite runs offline: tfds builders never look up tfds' cloud bucket.

``tests/conftest.py`` switches the bucket off for every test. Here a tfds builder goes
through both places where tfds would otherwise query ``gs://tfds-data`` (constructing a
builder with no prepared copy → ``DatasetInfo.initialize_from_bucket``; and
``download_and_prepare`` with ``try_download_gcs=True``, tfds' default) while the one
function that touches the bucket (``gcs_utils.exists``) is replaced by a recorder.
"""

import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils import gcs_utils

from tests.evaluation.tfds_fixtures import TinyStripes


def test_a_tfds_builder_never_reaches_the_bucket(tmp_path, monkeypatch):
    lookups = []

    def record(path):
        lookups.append(str(path))
        return False

    monkeypatch.setattr(gcs_utils, "exists", record)
    builder = TinyStripes(data_dir=str(tmp_path))  # no prepared copy: info from code only
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=True)
    )
    assert builder.info.splits["train"].num_examples == TinyStripes.NUM_TRAIN
    assert not gcs_utils.is_dataset_on_gcs(builder.info.full_name)
    assert lookups == [], f"tfds looked up its bucket: {lookups}"
