"""Variant selection: a broken LLVM must be detected in a subprocess, never abort us."""

import os

import pytest

from mtsyn_tf.render import variant as variant_lib


def test_scalar_variant_always_probes_ok():
    ok, reason = variant_lib.probe_variant("scalar_rgb")
    assert ok, reason


def test_broken_llvm_is_reported_not_fatal(monkeypatch, tmp_path):
    bogus = tmp_path / "libLLVM-99.so"
    bogus.write_bytes(b"not a shared object")
    monkeypatch.setenv("DRJIT_LIBLLVM_PATH", str(bogus))
    ok, reason = variant_lib.probe_variant("llvm_ad_rgb")
    assert not ok
    assert "exited with code" in reason


def test_auto_falls_back_to_scalar_with_hint(monkeypatch, tmp_path):
    bogus = tmp_path / "libLLVM-99.so"
    bogus.write_bytes(b"")
    monkeypatch.setenv("DRJIT_LIBLLVM_PATH", str(bogus))
    variant_lib._cached_probe.cache_clear()
    variant_lib._auto_variant.cache_clear()
    logged = []
    monkeypatch.setattr(
        variant_lib.logging, "warning", lambda msg, *args: logged.append(msg % args)
    )
    try:
        assert variant_lib.resolve_variant("auto") == "scalar_rgb"
        with pytest.raises(RuntimeError, match="libllvm19"):
            variant_lib.resolve_variant("llvm_ad_rgb")
    finally:
        variant_lib._cached_probe.cache_clear()
        variant_lib._auto_variant.cache_clear()
    assert len(logged) == 1 and "scalar_rgb" in logged[0] and "libllvm19" in logged[0]


def test_find_libllvm_prefers_newest(monkeypatch, tmp_path):
    for name in ("libLLVM-14.so.1", "libLLVM-15.so", "libLLVM.so.19.1", "libLLVM-17.so"):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setattr(variant_lib, "_LIB_DIRS", (str(tmp_path),))
    assert variant_lib.find_libllvm() == os.path.join(str(tmp_path), "libLLVM.so.19.1")
    assert variant_lib.find_libllvm(min_major=20) is None


def test_unknown_variant_raises():
    with pytest.raises(ValueError, match="variant"):
        variant_lib.resolve_variant("cuda_ad_rgb")
