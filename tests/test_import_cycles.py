"""No import circles among mtsyn_tf modules, and every module imports.

The graph is read with ``ast`` from every ``import`` statement, at module level and inside
functions alike: a deferred import that closes a circle still ties the two modules
together (and only works because of the order in which they happen to load). An edge
goes to the module named, or to the package when ``from package import name`` names an
attribute of its ``__init__``; importing ``a.b.c`` is not counted as importing ``a.b``
(Python runs the package ``__init__`` first, but that is no dependency of ``c``'s code).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "mtsyn_tf"


def package_modules(root: str = ROOT) -> dict[str, str]:
    """``{dotted module name: file}`` of every .py file under ``root/mtsyn_tf``."""
    modules = {}
    for directory, _, files in os.walk(os.path.join(root, PACKAGE)):
        for file in files:
            if file.endswith(".py"):
                path = os.path.join(directory, file)
                name = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                modules[name.removesuffix(".__init__")] = path
    return modules


def imported_modules(name: str, path: str, modules) -> set[str]:
    """The package modules that ``name`` (at ``path``) imports anywhere in its code."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    here = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: "." is this package, ".." its parent, ...
                parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in modules else base)
    return (found & set(modules)) - {name}


def import_graph(root: str = ROOT) -> dict[str, set[str]]:
    modules = package_modules(root)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle ``[a, b, ..., a]``, or None (iterative DFS, sorted for stable output)."""
    state = {}  # name -> 1 on the current path, 2 done
    for start in sorted(graph):
        if start in state:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_find_cycle_sees_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / PACKAGE / "sub"
    pkg.mkdir(parents=True)
    (tmp_path / PACKAGE / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from mtsyn_tf.sub.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from . import c\n")
    (pkg / "c.py").write_text("import os\n\n\ndef g():\n    from .a import f\n")
    graph = import_graph(str(tmp_path))
    assert graph["mtsyn_tf.sub.b"] == {"mtsyn_tf.sub.c"}
    assert find_cycle(graph) == [
        "mtsyn_tf.sub.a",
        "mtsyn_tf.sub.b",
        "mtsyn_tf.sub.c",
        "mtsyn_tf.sub.a",
    ]
    (pkg / "c.py").write_text("import os\n")
    assert find_cycle(import_graph(str(tmp_path))) is None


def test_no_import_cycle_among_package_modules():
    graph = import_graph()
    assert len(graph) > 50 and "mtsyn_tf.evaluation.registry" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "Import circle: " + " -> ".join(cycle)


def test_every_module_imports():
    """Each module imports in one fresh interpreter; the renderer's first (DrJit must load
    before TensorFlow in a process)."""
    names = sorted(package_modules(), key=lambda n: (not n.startswith(f"{PACKAGE}.render"), n))
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True,
                          env=env, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
