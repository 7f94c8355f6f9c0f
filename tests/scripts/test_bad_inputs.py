"""Every row of docs/BAD_INPUTS.md: the script ends with one line naming the bad input.

All invocations run in one subprocess (tests/scripts/run_cases.py: one TensorFlow import
for about 70 script runs, each exactly as ``python scripts/X.py ...`` would run). Per case:
exit status != 0, stderr's last line is ``X.py: error: ...`` with the expected fragment and
the named input, no "Traceback" anywhere, protected paths byte-for-byte unchanged, paths
that must not appear absent, and no temporary file left anywhere in the case's directory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.scripts.bad_input_cases import ORDER, snapshot

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))
_DOC = os.path.join(_REPO, "docs", "BAD_INPUTS.md")
# What the writers of this package use as temporary names (io_utils, shards, TF's
# CheckpointManager): none may survive a failure.
_TEMPORARY = re.compile(r"(^\..*\.(tmp|old)-\d+-|\.tmp-\d+$|_temp|\.write-probe-)")


def _readonly_dir(root: str):
    """A directory this process cannot write into, and how to undo it (None: none here)."""
    path = os.path.join(root, "readonly")
    os.makedirs(path)
    if os.geteuid() != 0:
        os.chmod(path, 0o555)
        return path, lambda: os.chmod(path, 0o755)
    # root ignores permissions; a read-only tmpfs stops it (needs CAP_SYS_ADMIN).
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", path], capture_output=True
    )
    if mounted.returncode != 0:
        return None, lambda: None
    return path, lambda: subprocess.run(["umount", path], check=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("bad_inputs"))
    readonly, undo = _readonly_dir(root)
    steps = [
        {
            "call": "tests.scripts.bad_input_cases:prepare",
            "kwargs": {"root": root, "readonly_dir": readonly},
        }
    ]
    with open(os.path.join(root, "steps.json"), "w") as f:
        json.dump(steps, f)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_REPO, env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        proc = subprocess.run(
            [sys.executable, os.path.join(_HERE, "run_cases.py"), "steps.json", "results.json"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        with open(os.path.join(root, "results.json")) as f:
            results = json.load(f)
        with open(os.path.join(root, "spec.json")) as f:
            spec = json.load(f)
        yield spec, results
    finally:
        undo()


def test_positive_controls_succeed(corpus):
    """The harness passes a good invocation: a real run, then resuming it with the same flags."""
    _, results = corpus
    for case_id in ("ok_train", "ok_resume_same_flags"):
        result = results[case_id]
        assert result["exit_code"] == 0, result["stderr"][-2000:]
        assert "Traceback" not in result["stderr"]


@pytest.mark.parametrize("case_id", ORDER)
def test_bad_input(corpus, case_id):
    spec, results = corpus
    case = spec[case_id]
    if "skipped" in case:
        pytest.skip(case["skipped"])
    result = results[case_id]
    stderr = result["stderr"]
    assert result["exit_code"] != 0, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"{case['script']}: error: "), last
    assert case["expect"] in last, last
    assert case["names"] in last, last
    for path, before in case["snapshots"].items():
        assert os.path.exists(path), f"{path} was removed"
        assert snapshot(path) == before, f"{path} was changed"
    for path in case["absent"]:
        assert not os.path.exists(path), f"{path} was left behind"
    leftovers = [
        os.path.join(r, n)
        for r, dirs, files in os.walk(case["root"])
        for n in dirs + files
        if _TEMPORARY.search(n)
    ]
    assert not leftovers, leftovers


def _doc_rows() -> dict:
    """{id: (script, expected fragment)} from the table rows of docs/BAD_INPUTS.md."""
    rows = {}
    with open(_DOC, encoding="utf-8") as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 4 and cells[0].startswith("`") and cells[0].endswith("`"):
                rows[cells[0].strip("`")] = (cells[1].strip("`"), cells[3].strip("`"))
    return rows


def test_doc_table_lists_exactly_the_tested_cases(corpus):
    """The corpus table and the tests cannot drift apart: same ids, scripts and messages."""
    spec, _ = corpus
    rows = _doc_rows()
    assert sorted(rows) == sorted(ORDER)
    assert len(rows) >= 30
    for case_id, (script, expect) in rows.items():
        if "skipped" not in spec[case_id]:
            assert (script, expect) == (spec[case_id]["script"], spec[case_id]["expect"]), case_id
