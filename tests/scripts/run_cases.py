"""Runs many script invocations in one Python process (one TensorFlow import for all).

    python tests/scripts/run_cases.py CASES.json RESULTS.json

CASES.json is a list of steps. A step ``{"call": "module:function", "kwargs": {...}}``
calls that function in this process (to build inputs once TensorFlow is loaded, e.g.
after a real training run made a checkpoint) and runs the steps it returns next. A step
``{"id", "script", "args", "env", "fsize"}`` is one script invocation; it runs the
script exactly as ``python script args...`` would (``runpy`` with ``__name__ ==
"__main__"``, so the script's own ``app.run`` wiring is what is tested), with its stdout
and stderr (file descriptors 1 and 2, so TensorFlow's C++ logs too) captured, ``env``
added to the environment, and, if ``fsize`` is set, the soft RLIMIT_FSIZE lowered to that
many bytes: writing past it fails with EFBIG like a full disk fails with ENOSPC (Python
ignores SIGXFSZ). RESULTS.json maps each id to ``{"exit_code", "stderr", "stdout"}``; a
``SystemExit`` message is appended to stderr as the interpreter would print it, and an
exception escaping the script is recorded with its traceback (exit code 1).

Between cases every flag the scripts defined is deleted, so the next script can define
its own; the scripts' module cache (``train`` for train_multi_worker) is dropped too.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import runpy
import sys
import tempfile
import time
import traceback

from absl import app, flags  # noqa: F401 - app defines the help flags kept across cases


def _run_one(case: dict, baseline: set, scripts_dir: str) -> dict:
    for name in set(flags.FLAGS) - baseline:
        delattr(flags.FLAGS, name)
    flags.FLAGS.unparse_flags()
    for name in [m for m, mod in sys.modules.items() if _is_script(mod, scripts_dir)]:
        del sys.modules[name]
    script = os.path.join(scripts_dir, case["script"])
    saved_env = dict(os.environ)
    os.environ.update(case.get("env", {}))
    saved_argv = sys.argv
    sys.argv = [script, *case["args"]]
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        saved_fds = os.dup(1), os.dup(2)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        exit_code, tail, start = 0, "", time.perf_counter()
        try:
            if case.get("fsize"):
                resource.setrlimit(resource.RLIMIT_FSIZE, (case["fsize"], limits[1]))
            runpy.run_path(script, run_name="__main__")
        except SystemExit as e:
            if isinstance(e.code, str):
                exit_code, tail = 1, e.code + "\n"
            else:
                exit_code = 0 if e.code is None else int(e.code)
        except BaseException:  # noqa: BLE001 - what `python script` would print and exit 1 on
            exit_code, tail = 1, traceback.format_exc()
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limits)
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
            sys.argv = saved_argv
            os.environ.clear()
            os.environ.update(saved_env)
        out.seek(0)
        err.seek(0)
        return {
            "exit_code": exit_code,
            "seconds": round(time.perf_counter() - start, 2),
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace") + tail,
        }


def _is_script(module, scripts_dir: str) -> bool:
    path = getattr(module, "__file__", None) or ""
    return os.path.dirname(os.path.abspath(path)) == scripts_dir


def main(cases_path: str, results_path: str) -> None:
    with open(cases_path) as f:
        cases = json.load(f)
    scripts_dir = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
    baseline = set(flags.FLAGS)
    results, queue = {}, list(cases)
    while queue:
        step = queue.pop(0)
        if "call" in step:
            module, function = step["call"].split(":")
            queue[:0] = getattr(importlib.import_module(module), function)(**step["kwargs"])
        else:
            results[step["id"]] = _run_one(step, baseline, scripts_dir)
    with open(results_path, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:])
