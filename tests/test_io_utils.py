import json
import os
import stat

import cv2
import numpy as np
import pytest

from mtsyn_tf import io_utils


class _Boom(RuntimeError):
    pass


def test_atomic_file_success_replaces_and_keeps_extension(tmp_path):
    target = tmp_path / "sub" / "out.npy"
    with io_utils.atomic_file(str(target)) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path / "sub") and tmp.endswith(".npy")
        assert not target.exists()  # nothing published until the block ends
        np.save(tmp, np.arange(3))
    np.testing.assert_array_equal(np.load(target), np.arange(3))
    assert os.listdir(tmp_path / "sub") == ["out.npy"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_atomic_file_failure_leaves_nothing(tmp_path):
    target = tmp_path / "a.txt"
    with pytest.raises(_Boom):
        with io_utils.atomic_file(str(target)) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise _Boom()
    assert os.listdir(tmp_path) == []


def test_atomic_file_failure_keeps_existing_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(_Boom):
        with io_utils.atomic_file(str(target)) as tmp:
            with open(tmp, "w") as f:
                f.write("new")
            raise _Boom()
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]
    with pytest.raises(ValueError, match="already exists"):
        with io_utils.atomic_file(str(target), overwrite=False):
            pass
    with pytest.raises(ValueError, match="created no file"):
        with io_utils.atomic_file(str(target)):
            pass
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]


def test_atomic_directory(tmp_path):
    target = tmp_path / "export"
    with io_utils.atomic_directory(str(target)) as tmp:
        (open(os.path.join(tmp, "v1"), "w")).close()
    assert os.listdir(target) == ["v1"]
    with pytest.raises(ValueError, match="already exists"):
        with io_utils.atomic_directory(str(target)):
            pass
    with pytest.raises(_Boom):
        with io_utils.atomic_directory(str(target), overwrite=True) as tmp:
            (open(os.path.join(tmp, "v2"), "w")).close()
            raise _Boom()
    assert os.listdir(target) == ["v1"] and os.listdir(tmp_path) == ["export"]
    with io_utils.atomic_directory(str(target), overwrite=True) as tmp:
        (open(os.path.join(tmp, "v2"), "w")).close()
    assert os.listdir(target) == ["v2"] and os.listdir(tmp_path) == ["export"]


def test_write_json_and_text(tmp_path):
    path = tmp_path / "r.json"
    assert io_utils.write_json_atomic(str(path), {"b": 1, "a": tmp_path}) == str(path)
    assert json.loads(path.read_text()) == {"a": str(tmp_path), "b": 1}
    assert path.read_text().index('"a"') < path.read_text().index('"b"')  # sorted keys
    with pytest.raises(ValueError):  # circular: fails before the file is touched
        loop = {}
        loop["self"] = loop
        io_utils.write_json_atomic(str(path), loop)
    assert json.loads(path.read_text())["b"] == 1 and os.listdir(tmp_path) == ["r.json"]
    io_utils.write_text_atomic(str(tmp_path / "t.md"), "ü\n")
    assert (tmp_path / "t.md").read_text(encoding="utf-8") == "ü\n"


def test_write_png_round_trip(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200  # red
    rgb[1, 2] = (0, 10, 250)
    path = str(tmp_path / "x.png")
    assert io_utils.write_png(path, rgb) == path
    np.testing.assert_array_equal(cv2.imread(path)[..., ::-1], rgb)
    io_utils.write_png(path, np.full((3, 3, 1), 0.5, np.float32))
    np.testing.assert_array_equal(cv2.imread(path), np.full((3, 3, 3), 128))
    with pytest.raises(ValueError, match="must end in .png"):
        io_utils.write_png(str(tmp_path / "x.jpg"), rgb)
    with pytest.raises(ValueError, match="image"):
        io_utils.write_png(path, np.zeros((3, 3, 2)))
    assert os.listdir(tmp_path) == ["x.png"]
