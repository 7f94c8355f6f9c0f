"""scripts/render.py refuses to clobber a non-empty output directory."""

import os
import subprocess
import sys

import pytest

from mtsyn_tf.render.generate import prepare_output_dir

_SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "render.py")


def test_non_empty_output_dir_needs_overwrite(tmp_path):
    (tmp_path / "old.tfrecord").write_bytes(b"x")
    with pytest.raises(ValueError, match="--overwrite"):
        prepare_output_dir(str(tmp_path), overwrite=False)
    assert (tmp_path / "old.tfrecord").exists()
    prepare_output_dir(str(tmp_path), overwrite=True)
    assert os.listdir(tmp_path) == []
    empty = tmp_path / "new"
    prepare_output_dir(str(empty), overwrite=False)
    assert empty.is_dir()


def test_script_reports_the_refusal_without_a_traceback(tmp_path):
    (tmp_path / "old.tfrecord").write_bytes(b"x")
    result = subprocess.run(
        [sys.executable, _SCRIPT, f"--output_dir={tmp_path}", "--num_scenes=1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Pass --overwrite" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "old.tfrecord").exists()
