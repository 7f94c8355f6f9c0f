"""Helpers for renderer tests: tiny hand-built scenes with closed-form answers."""

import numpy as np

from mtsyn_tf.render import scene as scene_lib

GREY = scene_lib.Material("diffuse", (0.5, 0.5, 0.5))


def single_shape_scene(kind, to_world, camera, instance=7):
    """One primitive in front of a camera; everything else is empty space."""
    prim = scene_lib.Primitive(
        "target", kind, np.asarray(to_world, dtype=np.float64), GREY, instance
    )
    return scene_lib.SceneDescription(
        scene_id=0,
        seed=0,
        room_size=(1.0, 1.0, 1.0),
        primitives=(prim,),
        lights=(),
        cameras=(camera,),
    )


def assert_scenes_equal(a, b):
    """Field-by-field equality of two SceneDescriptions, numpy arrays compared exactly."""
    assert (a.scene_id, a.seed, a.room_size, a.lights, a.cameras) == (
        b.scene_id,
        b.seed,
        b.room_size,
        b.lights,
        b.cameras,
    )
    assert len(a.primitives) == len(b.primitives)
    for p, q in zip(a.primitives, b.primitives):
        assert (p.name, p.kind, p.material, p.instance, p.emission) == (
            q.name,
            q.kind,
            q.material,
            q.instance,
            q.emission,
        )
        np.testing.assert_array_equal(p.to_world, q.to_world)
        if p.material.bitmap is not None or q.material.bitmap is not None:
            np.testing.assert_array_equal(p.material.bitmap, q.material.bitmap)


# === Helpers that run in a spawned process (DrJit must not load after TensorFlow) ===

SAMPLE_ARRAYS = ("image", "depth", "normals", "instance", "contour", "valid", "intrinsics")


def render_in_sequence(scene_ids, variant, size, spp, denoise, extra_capacity=0):
    """Renders ``scene_ids`` one after another in this process; returns the samples and, per
    scene, (JIT kernels launched, kernels compiled or loaded from DrJit's disk cache, i.e.
    not found in this process's in-memory cache, id of the template used)."""
    import drjit as dr

    from mtsyn_tf.render import mitsuba_backend, mitsuba_template
    from mtsyn_tf.render import variant as variant_lib

    variant_lib.set_variant(variant)
    mitsuba_backend._RENDERERS.clear()
    if extra_capacity:
        desc = scene_lib.make_scene(scene_ids[0])
        grown = {k: v + extra_capacity for k, v in mitsuba_template.default_capacity().items()}
        key = (variant, size, size, spp, 4, denoise != "off", mitsuba_backend.FREEZE_PASSES)
        mitsuba_backend._RENDERERS[key] = mitsuba_backend._Renderer(
            grown, 2, size, size, spp, 4, denoise != "off"
        )
        assert mitsuba_backend.renderer_for(desc, size, size, spp, 4, denoise != "off")
    samples, stats = [], []
    dr.set_flag(dr.JitFlag.KernelHistory, True)
    for scene_id in scene_ids:
        desc = scene_lib.make_scene(scene_id)
        # Writing parameters runs a few tiny kernels whose code depends on e.g. a texture's
        # resolution (a handful of ~1 ms compilations until the sizes repeat); the counts
        # below cover what follows: the render kernels and a repeated upload.
        mitsuba_backend._prepare(desc, size, size, spp, 4, variant, True, denoise)
        dr.kernel_history()  # clears it
        (sample,) = mitsuba_backend.render_scene_in_process(
            desc, size, spp, 4, variant, True, denoise
        )
        # Kernels over pixels only (sizes a multiple of the pixel count): the render passes.
        # A frozen pass first evaluates what the parameter writes left pending (texture
        # layout conversions over 128x128 texels, size-1 scalars: ~50-operation kernels
        # whose code depends on how many slots changed, each a ~1 ms compilation).
        jit = [
            k
            for k in dr.kernel_history()
            if k["type"] == dr.KernelType.JIT and k["size"] % (size * size) == 0
        ]
        template = next(iter(mitsuba_backend._RENDERERS.values())).template
        new = sum((not k["cache_hit"]) or k["cache_disk"] for k in jit)
        stats.append((len(jit), new, id(template)))
        samples.append(sample)
    return samples, stats


def denoise_psnr(scene_id, variant, size, spp, reference_spp, quality):
    """(PSNR noisy, PSNR denoised) in dB of one view against a many-sample render."""
    from mtsyn_tf.render import labels, mitsuba_backend

    desc = scene_lib.make_scene(scene_id)
    ((ref, _),) = mitsuba_backend.render_linear_rgb(desc, size, reference_spp, 4, variant)
    ((denoised, noisy),) = mitsuba_backend.render_linear_rgb(
        desc, size, spp, 4, variant, denoise=quality
    )
    scale = labels.exposure(ref)
    ref8 = labels.tonemap(ref, scale=scale).astype(np.float64)

    def psnr(x):
        mse = np.mean((labels.tonemap(x, scale=scale) - ref8) ** 2)
        return 10 * np.log10(255.0**2 / mse)

    return psnr(noisy), psnr(denoised)


def reference_crop_psnr(scene_id, variant, size, spp):
    """PSNR in dB of a preview's reference crop against the same window of a full-frame
    render at REFERENCE_SPP, and against that window shifted by (dy, dx) in SHIFTS."""
    from mtsyn_tf.render import labels, mitsuba_backend

    desc = scene_lib.make_scene(scene_id)
    (sample,) = mitsuba_backend.render_scene_in_process(
        desc, size, spp, 4, variant, True, "fast", keep_noisy=True
    )
    ((denoised, _),) = mitsuba_backend.render_linear_rgb(desc, size, spp, 4, variant, "fast")
    ((full, _),) = mitsuba_backend.render_linear_rgb(
        desc, size, mitsuba_backend.REFERENCE_SPP, 4, variant
    )
    full8 = labels.tonemap(full, scale=labels.exposure(denoised)).astype(np.float64)
    crop = sample["image_reference_crop"].astype(np.float64)
    top, left, side = sample["reference_crop_box"]

    def psnr(dy, dx):
        window = full8[top + dy : top + dy + side, left + dx : left + dx + side]
        return 10 * np.log10(255.0**2 / np.mean((window - crop) ** 2))

    return psnr(0, 0), [psnr(dy, dx) for dy, dx in SHIFTS]


SHIFTS = ((0, 3), (3, 0), (-3, -3))


def labels_with_and_without_guides(scene_ids, variant, size):
    """Per scene, the label arrays of a denoised RGB render (label pass with the albedo
    guide appended) and of a label-only render (label AOVs alone), each in its own renderer
    of this process."""
    from mtsyn_tf.render import mitsuba_backend
    from mtsyn_tf.render import variant as variant_lib

    variant_lib.set_variant(variant)
    keys = ("depth", "normals", "instance", "contour", "valid")
    out = []
    for scene_id in scene_ids:
        desc = scene_lib.make_scene(scene_id)
        (guided,) = mitsuba_backend.render_scene_in_process(desc, size, 2, 4, variant, True, "fast")
        (plain,) = mitsuba_backend.render_scene_in_process(desc, size, 2, 4, variant, False)
        out.append(({k: guided[k] for k in keys}, {k: plain[k] for k in keys}))
    return out


def plastic_alpha_mismatches(scene_ids, variant):
    """Applies ``scene_ids`` in turn to one template; returns (slot, alpha in Mitsuba,
    roughness of the primitive there) for every used roughplastic slot whose BSDF does not
    hold its primitive's roughness, and the number of roughplastic slots checked."""
    import numpy as np

    from mtsyn_tf.render import mitsuba_template
    from mtsyn_tf.render import variant as variant_lib

    variant_lib.set_variant(variant)
    template = mitsuba_template.SceneTemplate(
        mitsuba_template.default_capacity(), 1, 8, 8, 1, 1e-3, 1e4
    )
    bad, checked = [], 0
    for scene_id in scene_ids:
        for name, prim in template.apply(scene_lib.make_scene(scene_id)).items():
            if prim.material.kind != "roughplastic":
                continue
            alpha = float(np.ravel(template.params[f"{name}.bsdf.brdf_0.alpha"])[0])
            checked += 1
            # float32 storage of a float64 level: equal to 1e-7 relative.
            if abs(alpha - prim.material.roughness) > 1e-6:
                bad.append((name, alpha, prim.material.roughness))
    return bad, checked


def render_frozen_and_traced(scene_ids, variant, size, spp, denoise):
    """Renders ``scene_ids`` in order twice in this process, with frozen render passes and
    with traced ones; returns (frozen samples, traced samples, recordings of the rgb pass)."""
    from mtsyn_tf.render import mitsuba_backend
    from mtsyn_tf.render import variant as variant_lib

    variant_lib.set_variant(variant)
    out = {}
    for freeze in (True, False):
        mitsuba_backend.FREEZE_PASSES = freeze
        mitsuba_backend._RENDERERS.clear()
        out[freeze] = [
            mitsuba_backend.render_scene_in_process(
                scene_lib.make_scene(i), size, spp, 4, variant, True, denoise
            )[0]
            for i in scene_ids
        ]
        if freeze:
            renderer = next(iter(mitsuba_backend._RENDERERS.values()))
            recordings = renderer._frozen["rgb"].n_recordings if renderer._frozen else 0
    mitsuba_backend.FREEZE_PASSES = True
    return out[True], out[False], recordings
