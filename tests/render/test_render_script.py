"""scripts/render.py refuses to clobber a non-empty output directory."""

import importlib.util
import os

import pytest

_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "render.py")


def _load_script():
    spec = importlib.util.spec_from_file_location("render_script", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_non_empty_output_dir_needs_overwrite(tmp_path):
    script = _load_script()
    (tmp_path / "old.tfrecord").write_bytes(b"x")
    with pytest.raises(ValueError, match="--overwrite"):
        script._prepare_output_dir(str(tmp_path), overwrite=False)
    assert (tmp_path / "old.tfrecord").exists()
    script._prepare_output_dir(str(tmp_path), overwrite=True)
    assert os.listdir(tmp_path) == []
    empty = tmp_path / "new"
    script._prepare_output_dir(str(empty), overwrite=False)
    assert empty.is_dir()
