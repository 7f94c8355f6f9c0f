"""Chooses the Mitsuba variant: the vectorised ``llvm_ad_rgb`` when it works, else ``scalar_rgb``.

``llvm_ad_rgb`` JIT-compiles through the system's libLLVM. Debian 12's stock LLVM 14/15
abort inside instruction selection (``LLVM ERROR: Cannot select ... fminimum``) on
Mitsuba 3.6+ kernels, which kills the whole process. So the variant is probed once in a
*subprocess* with a tiny render; only a clean exit proves it usable. The fix is a newer
LLVM (``apt-get install libllvm19``, see scripts/install_render_deps.sh), which
:func:`configure_libllvm` points DrJit at through ``DRJIT_LIBLLVM_PATH``.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import subprocess
import sys

from absl import logging

VARIANTS = ("scalar_rgb", "llvm_ad_rgb")
MIN_LLVM_MAJOR = 16
_LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")
_FIX_HINT = (
    "Install a newer LLVM to enable it: `sudo apt-get install -y libllvm19` "
    "(or run scripts/install_render_deps.sh), or set DRJIT_LIBLLVM_PATH to a libLLVM >= 16."
)

_PROBE_SCRIPT = """
import mitsuba as mi
mi.set_variant("{variant}")
scene = mi.load_dict({{
    "type": "scene",
    "integrator": {{"type": "path", "max_depth": 3}},
    "sensor": {{"type": "perspective", "fov": 60,
                "film": {{"type": "hdrfilm", "width": 8, "height": 8}}}},
    "emitter": {{"type": "constant"}},
    "shape": {{"type": "sphere", "center": [0, 0, 3], "radius": 1,
               "bsdf": {{"type": "roughconductor"}}}},
}})
image = mi.render(scene, spp=2)
import numpy as np
assert np.isfinite(np.array(image)).all()
print("PROBE_OK")
"""


def _llvm_major(path: str) -> int:
    match = re.search(r"libLLVM(?:-|\.so\.)(\d+)", os.path.basename(path))
    return int(match.group(1)) if match else -1


def find_libllvm(min_major: int = MIN_LLVM_MAJOR) -> str | None:
    """Newest system libLLVM with major version >= ``min_major``, or None."""
    candidates = []
    for d in _LIB_DIRS:
        candidates += glob.glob(os.path.join(d, "libLLVM-*.so*")) + glob.glob(
            os.path.join(d, "libLLVM.so.*")
        )
    candidates = [c for c in candidates if _llvm_major(c) >= min_major and os.path.exists(c)]
    if not candidates:
        return None
    return max(candidates, key=lambda c: (_llvm_major(c), -len(c)))


def configure_libllvm() -> str | None:
    """Points DrJit at a usable libLLVM unless the user already chose one.

    Must run before DrJit initialises its LLVM backend (i.e. before ``mi.set_variant``
    of an llvm variant), which is why every entry point calls it first. Returns the path
    DrJit will use, or None to leave DrJit's own search in charge.
    """
    if os.environ.get("DRJIT_LIBLLVM_PATH"):
        return os.environ["DRJIT_LIBLLVM_PATH"]
    path = find_libllvm()
    if path is not None:
        os.environ["DRJIT_LIBLLVM_PATH"] = path
    return path


def probe_variant(variant: str, timeout_s: float = 180.0) -> tuple[bool, str]:
    """Renders a tiny scene with ``variant`` in a subprocess. Returns (ok, reason)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}. Received: variant={variant!r}")
    configure_libllvm()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE_SCRIPT.format(variant=variant)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=dict(os.environ),
        )
    except subprocess.TimeoutExpired:
        return False, f"probe render timed out after {timeout_s:.0f} s"
    if proc.returncode == 0 and "PROBE_OK" in proc.stdout:
        return True, "probe render succeeded"
    lines = [ln for ln in (proc.stderr + proc.stdout).strip().splitlines() if ln.strip()]
    llvm_error = [ln for ln in lines if "LLVM ERROR" in ln]
    detail = (llvm_error or lines[-1:] or ["no output"])[0].strip()
    return False, f"probe render exited with code {proc.returncode}: {detail[:300]}"


@functools.cache
def _cached_probe(variant: str) -> tuple[bool, str]:
    return probe_variant(variant)


def is_variant_available(variant: str) -> bool:
    """Whether ``variant`` renders here (probed in a subprocess once per process)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}. Received: variant={variant!r}")
    return _cached_probe(variant)[0]


@functools.cache
def _auto_variant() -> str:
    ok, reason = _cached_probe("llvm_ad_rgb")
    if ok:
        logging.info(
            "Mitsuba variant llvm_ad_rgb works (libLLVM: %s).",
            os.environ.get("DRJIT_LIBLLVM_PATH", "DrJit default search"),
        )
        return "llvm_ad_rgb"
    logging.warning(
        "Mitsuba variant llvm_ad_rgb is unusable here (%s); falling back to scalar_rgb, "
        "which is slower per core. %s",
        reason,
        _FIX_HINT,
    )
    return "scalar_rgb"


def resolve_variant(requested: str = "auto") -> str:
    """Maps ``auto`` to the best working variant (probed once per process)."""
    if requested == "auto":
        return _auto_variant()
    if requested not in VARIANTS:
        raise ValueError(
            f"variant must be 'auto' or one of {VARIANTS}. Received: variant={requested!r}"
        )
    if requested == "llvm_ad_rgb":
        # An explicit request still gets probed: a broken LLVM would abort this process.
        ok, reason = _cached_probe(requested)
        if not ok:
            raise RuntimeError(
                f"Mitsuba variant llvm_ad_rgb is unusable here ({reason}). {_FIX_HINT}"
            )
    return requested


def set_variant(requested: str = "auto") -> str:
    """Resolves and activates a Mitsuba variant in this process; returns its name."""
    variant = resolve_variant(requested)
    configure_libllvm()
    import mitsuba as mi

    if mi.variant() != variant:
        mi.set_variant(variant)
    return variant
