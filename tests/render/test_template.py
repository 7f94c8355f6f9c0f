"""The fixed-structure scene template: reused across scenes without stale parameters or
recompilation, and the denoiser (tests run their renders in a spawned process: DrJit must
not load after TensorFlow)."""

import multiprocessing

import numpy as np
import pytest
import render_testlib
from render_testlib import SAMPLE_ARRAYS

from mtsyn_tf.render import denoise as denoise_lib
from mtsyn_tf.render import mitsuba_template
from mtsyn_tf.render import scene as scene_lib
from mtsyn_tf.render import variant as variant_lib

SIZE = 48
DENOISE = "fast" if denoise_lib.pyoidn_available() else "off"


def _spawned(fn, *args):
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def _busy_and_sparse_scenes():
    """A scene using many slots (two ceiling panels, a point light, most primitives) and one
    using few (one panel, no point light), so the second must park what the first used."""
    descs = [scene_lib.make_scene(i) for i in range(40)]

    def lights(d):
        return sum(p.emission is not None for p in d.primitives), len(d.lights)

    busy = max((d for d in descs if lights(d) == (2, 1)), key=lambda d: len(d.primitives))
    sparse = min((d for d in descs if lights(d) == (1, 0)), key=lambda d: len(d.primitives))
    assert len(busy.primitives) > len(sparse.primitives) + 5
    return busy.scene_id, sparse.scene_id


def _assert_samples_equal(a, b):
    for key in SAMPLE_ARRAYS:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_scene_after_another_equals_scene_rendered_fresh(variant):
    busy, sparse = _busy_and_sparse_scenes()
    (fresh,), _ = _spawned(render_testlib.render_in_sequence, [sparse], variant, SIZE, 2, DENOISE)
    (_, after), stats = _spawned(
        render_testlib.render_in_sequence, [busy, sparse], variant, SIZE, 2, DENOISE
    )
    assert stats[0][2] == stats[1][2]  # one template served both scenes
    _assert_samples_equal(after, fresh)
    # The sparse scene after the busy one, rendered back again, gives the busy one's labels.
    (busy_fresh, _, busy_again), _ = _spawned(
        render_testlib.render_in_sequence, [busy, sparse, busy], variant, SIZE, 2, DENOISE
    )
    _assert_samples_equal(busy_again, busy_fresh)


def test_larger_template_renders_the_same_pixels(variant):
    """Growing a process's template (a scene needing more slots) changes no pixel."""
    _, sparse = _busy_and_sparse_scenes()
    (a,), _ = _spawned(render_testlib.render_in_sequence, [sparse], variant, SIZE, 2, DENOISE)
    (b,), _ = _spawned(render_testlib.render_in_sequence, [sparse], variant, SIZE, 2, DENOISE, 2)
    _assert_samples_equal(a, b)


@pytest.mark.skipif(
    not variant_lib.is_variant_available("llvm_ad_rgb"), reason="needs the llvm_ad_rgb variant"
)
def test_new_scenes_reuse_the_compiled_kernels():
    """After the first scene, a process compiles no render kernel and keeps one template:
    DrJit's kernel history shows every image-sized JIT kernel of later scenes as an
    in-memory cache hit (neither compiled nor read from the disk cache)."""
    busy, sparse = _busy_and_sparse_scenes()
    _, stats = _spawned(
        render_testlib.render_in_sequence, [3, busy, sparse, 11], "llvm_ad_rgb", SIZE, 2, DENOISE
    )
    (_, first_new, template), *later = stats
    assert first_new > 0  # the first scene compiled or loaded its kernels
    for kernels, new, later_template in later:
        assert kernels > 0 and new == 0, stats
        assert later_template == template, stats


def test_default_capacity_fits_generated_scenes():
    """Growing a template recompiles, so the default must fit nearly every scene."""
    fits = [
        all(
            n <= mitsuba_template.DEFAULT_CAPACITY.get(k, 0)
            for k, n in mitsuba_template.needed_capacity(scene_lib.make_scene(i)).items()
        )
        for i in range(3000, 3400)
    ]
    assert np.mean(fits) >= 0.99


def test_texture_data_tiles_and_checkers():
    texels = mitsuba_template.TEXTURE_TEXELS
    rng = np.random.default_rng(0)
    pattern = rng.uniform(size=(32, 32, 3)).astype(np.float32)
    m = scene_lib.Material("diffuse", (0.1, 0.2, 0.3), texture="bitmap", texture_scale=4.0)
    m = scene_lib.Material(**{**m.__dict__, "bitmap": pattern})
    tiled = mitsuba_template.texture_data(m)
    assert tiled.shape == (texels, texels, 3)
    # 4 tiles of 32 texels in 128: every texel centre falls on a pattern texel centre.
    np.testing.assert_array_equal(tiled[32:64, 96:128], pattern)
    # 2 tiles: texel i samples pattern coordinate i / 2 - 1/4 (bilinear, wrapping): row 0
    # mixes pattern rows 31 and 0 as 1/4 : 3/4, column 5 columns 2 and 3 as 3/4 : 1/4.
    half = mitsuba_template.texture_data(scene_lib.Material(**{**m.__dict__, "texture_scale": 2}))
    rows = 0.25 * pattern[31] + 0.75 * pattern[0]
    # float32 products and sums of values in [0, 1]: a few ulps apart at most.
    np.testing.assert_allclose(half[0, 5], 0.75 * rows[2] + 0.25 * rows[3], rtol=1e-6)
    c = scene_lib.Material(
        "diffuse", (1.0, 0.0, 0.0), texture="checkerboard", color2=(0.0, 0.0, 1.0), texture_scale=2
    )
    checker = mitsuba_template.texture_data(c)
    cell = texels // 4  # 2 cells per unit of scaled uv
    assert checker.shape == (texels, texels, 3)
    np.testing.assert_array_equal(checker[0, 0], [1, 0, 0])
    np.testing.assert_array_equal(checker[0, cell - 1], [1, 0, 0])
    np.testing.assert_array_equal(checker[0, cell], [0, 0, 1])
    np.testing.assert_array_equal(checker[cell, cell], [1, 0, 0])
    plain = mitsuba_template.texture_data(scene_lib.Material("diffuse", (0.1, 0.2, 0.3)))
    np.testing.assert_allclose(plain, np.broadcast_to([0.1, 0.2, 0.3], (texels, texels, 3)))


@pytest.mark.skipif(
    not variant_lib.is_variant_available("llvm_ad_rgb"), reason="needs the llvm_ad_rgb variant"
)
def test_frozen_render_passes_equal_traced_ones():
    """Frozen passes (replayed kernels, new inputs) give the traced passes' pixels, labels
    and images, bit for bit, over scenes that change every slot kind, the number of area and
    point lights and the camera; and they do replay (fewer recordings than scenes)."""
    busy, sparse = _busy_and_sparse_scenes()
    # Recorded with one area light and no point light (scenes 5 and 1 have the same), then
    # replayed with two area lights (11), a point light (12) and both (busy, 3).
    ids = [sparse, 5, 1, 11, busy, 12, 3, sparse, 2, busy]
    frozen, traced, recordings = _spawned(
        render_testlib.render_frozen_and_traced, ids, "llvm_ad_rgb", SIZE, 2, DENOISE
    )
    for a, b in zip(frozen, traced):
        _assert_samples_equal(a, b)
    # Two recordings to start (the second makes changed literals opaque), then one per
    # emitter pattern: (1 area, 0 point) at the start, then (2, 0), (2, 1), (1, 1).
    assert recordings <= 5, recordings


@pytest.mark.skipif(not denoise_lib.pyoidn_available(), reason="needs pyoidn")
def test_denoiser_brings_few_samples_closer_to_the_reference(variant):
    noisy, denoised = _spawned(render_testlib.denoise_psnr, 7, variant, 64, 2, 128, "fast")
    # Measured: 18.5 -> 29.8 dB (llvm), 18.7 -> 30.0 dB (scalar). A 3 dB margin leaves room
    # for other machines' sampling differences and fails for an identity "denoiser" (0 dB).
    assert denoised > noisy + 3.0, (noisy, denoised)


def test_without_pyoidn_rendering_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setattr(denoise_lib, "pyoidn_available", lambda: False)
    monkeypatch.setattr(denoise_lib, "_DENOISERS", {})
    logged = []
    monkeypatch.setattr(denoise_lib.logging, "warning", lambda msg, *a: logged.append(msg % a))
    assert denoise_lib.make_denoiser("fast", 1) is None
    assert denoise_lib.make_denoiser("fast", 1) is None
    assert len(logged) == 1 and "WITHOUT denoising" in logged[0]
    with pytest.raises(ValueError, match="quality"):
        denoise_lib.make_denoiser("best", 1)


@pytest.mark.skipif(not denoise_lib.pyoidn_available(), reason="needs pyoidn")
def test_reference_crop_is_the_same_window_at_many_samples(variant):
    """The preview's reference crop matches its box in a full-frame REFERENCE_SPP render."""
    aligned, shifted = _spawned(render_testlib.reference_crop_psnr, 7, variant, 40, 2)
    # Measured: 34.1 dB aligned vs <= 30.0 shifted by 3 px (llvm), 35.5 vs 31.1 (scalar).
    # Two independent 256-spp renders differ by noise only (> 30 dB); a crop taken from the
    # wrong window, or rendered at few samples (~18 dB), fails one of the two bounds.
    assert aligned > 30.0 and aligned > max(shifted) + 2.0, (aligned, shifted)


@pytest.mark.skipif(not denoise_lib.pyoidn_available(), reason="needs pyoidn")
def test_denoiser_guides_leave_the_labels_unchanged(variant):
    """The albedo guide rides along in the label pass: every label equals a label-only
    render's, bit for bit (scenes 4 and 9: textured plastic, metal and an area light)."""
    pairs = _spawned(render_testlib.labels_with_and_without_guides, [4, 9], variant, SIZE)
    for guided, plain in pairs:
        for key, value in plain.items():
            np.testing.assert_array_equal(guided[key], value, err_msg=key)


def test_slot_assignment_is_pure_and_plastic_goes_home():
    """Same scene -> same slots; a roughplastic primitive takes a free slot whose home level
    is its roughness while one is left (then the last free slot), others the first free."""
    template_slots = []
    for key, count in sorted(mitsuba_template.default_capacity().items()):
        template_slots += [(f"{key}_{k}", key) for k in range(count)]
    levels = scene_lib.PLASTIC_ROUGHNESS_LEVELS
    for scene_id in range(30):
        desc = scene_lib.make_scene(scene_id)
        if not all(
            n <= mitsuba_template.DEFAULT_CAPACITY.get(k, 0)
            for k, n in mitsuba_template.needed_capacity(desc).items()
        ):
            continue
        first = mitsuba_template.assign_slots(template_slots, desc.primitives)
        assert first == mitsuba_template.assign_slots(template_slots, desc.primitives)
        assert sorted(map(id, first.values())) == sorted(map(id, desc.primitives))
        index = {}
        for name, key in template_slots:
            index[name] = sum(1 for _, k in template_slots[: len(index)] if k == key)
        for key in {mitsuba_template.slot_key(p) for p in desc.primitives}:
            used = [(index[n], p) for n, p in first.items() if mitsuba_template.slot_key(p) == key]
            if key[1] == "roughplastic":
                homes = {lv: [] for lv in levels}
                for k in range(mitsuba_template.DEFAULT_CAPACITY[key]):
                    homes[levels[k % len(levels)]].append(k)
                for k, prim in used:
                    # Home slot, or overflow because every home slot of its level is taken.
                    at_home = levels[k % len(levels)] == prim.material.roughness
                    taken = {j for j, _ in used}
                    assert at_home or set(homes[prim.material.roughness]) <= taken, (key, k)
            else:
                assert sorted(k for k, _ in used) == list(range(len(used))), key


def test_plastic_roughness_takes_the_listed_levels():
    plastic = [
        p.material.roughness
        for i in range(60)
        for p in scene_lib.make_scene(i).primitives
        if p.material.kind == "roughplastic"
    ]
    assert set(plastic) == set(scene_lib.PLASTIC_ROUGHNESS_LEVELS)


def test_reused_plastic_slots_hold_their_primitives_roughness(variant):
    """Roughness is written only when a slot's level changes; after many scenes (overflow
    slots change level) every used slot's BSDF still holds its primitive's roughness."""
    bad, checked = _spawned(render_testlib.plastic_alpha_mismatches, range(40), variant)
    assert checked > 100 and not bad, (checked, bad[:5])
