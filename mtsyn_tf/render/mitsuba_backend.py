"""Renders a :class:`~mtsyn_tf.render.scene.SceneDescription` with Mitsuba 3.

Every scene is written into a per-process :class:`~mtsyn_tf.render.mitsuba_template.SceneTemplate`
(fixed structure, new parameters), so DrJit compiles the render kernels once per process
instead of once per scene. Each view is rendered twice from one camera pose:

* ``labels``: the ``aov`` integrator (depth, shading normal, shape index, and with
  denoising on also albedo) at 1 spp through a *non-jittered* stratified sampler and a
  radius-0.5 box filter, i.e. exactly one ray through each pixel centre, so ids are never
  blended and depth/normals are the exact values at the pixel centre (which the
  closed-form tests rely on). The albedo and normal of this pass also guide Intel Open
  Image Denoise (:mod:`mtsyn_tf.render.denoise`);
* ``rgb``: path tracing at ``spp`` jittered samples per pixel with a box filter
  (antialiased), denoised with those guides unless ``denoise="off"``.

Why the guides come from the label pass: a separate 4-spp ``aov`` pass through the rgb
sensor cost ~10 % of a fresh image (DrJit re-traces every slot's BSDF per pass), and the
pixel-centre guides denoise as well (benchmarks/render_throughput.py measured the PSNR
of both). Adding the albedo AOV changes no label value (tests/render/test_template.py).

Fixed sampler seeds make every render reproducible bit for bit, whichever scenes the
process rendered before (tests/render/test_template.py).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import multiprocessing
import sys
import time

import numpy as np

from mtsyn_tf import geometry
from mtsyn_tf.render import denoise as denoise_lib
from mtsyn_tf.render import labels as labels_lib
from mtsyn_tf.render import mitsuba_template
from mtsyn_tf.render import scene as scene_lib
from mtsyn_tf.render import variant as variant_lib

NEAR_CLIP = 1e-3
FAR_CLIP = 1e4
DEFAULT_SPP = 4
DEFAULT_MAX_DEPTH = 4
DEFAULT_DENOISE = "balanced"
DENOISE_CHOICES = ("off", *denoise_lib.QUALITIES)
# Samples per pixel of the reference crop shown beside noisy / denoised previews.
REFERENCE_SPP = 256
_LABEL_AOVS = "dd:depth,nn:sh_normal,si:shape_index"
# Appended after the label channels (0: depth, 1-3: normal, 4: shape index) when denoising.
_GUIDE_AOVS = "al:albedo"


def _size(resolution) -> tuple[int, int]:
    """``resolution`` as (height, width) from an int or a pair."""
    hw = (resolution, resolution) if np.isscalar(resolution) else tuple(resolution)
    if len(hw) != 2 or any(int(v) != v or v < 2 for v in hw):
        raise ValueError(
            f"resolution must be an int >= 2 or (height, width). Received: {resolution!r}"
        )
    return int(hw[0]), int(hw[1])


def render_seed(desc: scene_lib.SceneDescription, view: int) -> int:
    """Sampler seed for one view: fixed per (seed, scene_id, view), so renders reproduce."""
    digest = hashlib.sha256(f"{desc.seed}/{desc.scene_id}/{view}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


_ISOLATED_POOL = None


def tensorflow_conflict() -> bool:
    """True when importing DrJit here would crash: TensorFlow is loaded and DrJit is not.

    Importing ``drjit`` *after* ``tensorflow`` in one process segfaults (TF 2.21 with
    DrJit 1.5); the other order works. Callers that already loaded TF therefore render in
    a separate process.
    """
    return "tensorflow" in sys.modules and "drjit" not in sys.modules


class PhaseTimes:
    """CPU seconds per rendering phase, summed over calls: ``with times("rgb pass"): ...``.

    Process CPU time (all of DrJit's and OIDN's threads), so a busy machine does not inflate
    it; benchmarks/render_throughput.py prints the breakdown. With ``kernel_history`` (JIT
    variants) each phase also counts the DrJit kernels it launched and those it compiled or
    loaded from disk (not in this process's in-memory kernel cache).
    """

    def __init__(self, kernel_history: bool = False):
        self.seconds: dict[str, float] = {}
        self.kernels: dict[str, dict[str, float]] = {}
        self._history = kernel_history
        if kernel_history:
            import drjit as dr

            dr.set_flag(dr.JitFlag.KernelHistory, True)
            dr.kernel_history()  # clears it

    @contextlib.contextmanager
    def __call__(self, phase: str):
        start = time.process_time()
        try:
            yield
        finally:
            elapsed = time.process_time() - start
            self.seconds[phase] = self.seconds.get(phase, 0.0) + elapsed
            if self._history:
                self._add_kernels(phase)

    def _add_kernels(self, phase: str) -> None:
        import drjit as dr

        dr.sync_thread()  # the phase's kernels have run (LLVM launches are asynchronous)
        history = dr.kernel_history()
        jit = [k for k in history if k["type"] == dr.KernelType.JIT]
        totals = self.kernels.setdefault(phase, {"kernels": 0.0, "compiled": 0.0})
        totals["kernels"] += len(jit)
        totals["compiled"] += sum((not k["cache_hit"]) or k["cache_disk"] for k in jit)


def _untimed(phase: str):
    del phase
    return contextlib.nullcontext()


def reference_crop_box(height: int, width: int) -> tuple[int, int, int]:
    """(top, left, size): the centred square, a quarter of the shorter side, that previews
    render at :data:`REFERENCE_SPP` (a full 227x227 frame would cost ~60x a 4-spp one)."""
    size = max(1, min(height, width) // 4)
    return (height - size) // 2, (width - size) // 2, size


def _isolated_pool():
    """A lazily started single ``spawn`` process that renders without TensorFlow loaded."""
    global _ISOLATED_POOL
    if _ISOLATED_POOL is None:
        _ISOLATED_POOL = multiprocessing.get_context("spawn").Pool(1)
        atexit.register(_ISOLATED_POOL.terminate)
    return _ISOLATED_POOL


def render_scene(
    desc: scene_lib.SceneDescription,
    resolution=227,
    spp: int = DEFAULT_SPP,
    max_depth: int = DEFAULT_MAX_DEPTH,
    variant: str = "auto",
    with_rgb: bool = True,
    denoise: str = DEFAULT_DENOISE,
    keep_noisy: bool = False,
) -> list[dict]:
    """Renders every view of ``desc``; returns one CONTRACTS.md sample dict per view.

    ``with_rgb=False`` skips path tracing (image is all zeros), for label-only tests.
    ``denoise``: ``"off"`` or an OIDN quality (``fast`` / ``balanced`` / ``high``); without
    pyoidn installed it falls back to the noisy image with one logged warning.
    ``keep_noisy`` adds the undenoised image as ``"image_noisy"`` and, for RGB renders, a
    :data:`REFERENCE_SPP` render of the :func:`reference_crop_box` as
    ``"image_reference_crop"`` with its box as ``"reference_crop_box"`` (for preview grids;
    all at the denoised image's exposure).
    If TensorFlow is already loaded in this process (see :func:`tensorflow_conflict`) the
    render runs in a helper process; results are identical either way.
    """
    if int(spp) < 1:
        raise ValueError(f"spp must be >= 1. Received: spp={spp}")
    if int(max_depth) < 1:
        raise ValueError(f"max_depth must be >= 1. Received: max_depth={max_depth}")
    if denoise not in DENOISE_CHOICES:
        raise ValueError(f"denoise must be one of {DENOISE_CHOICES}. Received: denoise={denoise!r}")
    _size(resolution)
    args = (
        desc,
        resolution,
        int(spp),
        int(max_depth),
        variant_lib.resolve_variant(variant),
        with_rgb,
        denoise,
        keep_noisy,
    )
    if tensorflow_conflict():
        return _isolated_pool().apply(render_scene_in_process, args)
    return render_scene_in_process(*args)


class _Renderer:
    """A template plus the integrators that render it (one per process and setting).

    With ``freeze`` (JIT variants) the label and rgb passes are Dr.Jit frozen functions:
    the first calls trace the integrator through every template slot and record the
    kernels it launches; later scenes only rewrite the template's parameters, and the
    passes replay those kernels with the new inputs instead of tracing again (tracing was
    about half of a fresh image's CPU time). A pass records again when its inputs'
    structure changes: the first two calls, and (rgb pass) once per
    :attr:`SceneTemplate.emitter_pattern` (passed as ``state_fn``, because Mitsuba compiles
    the range and total of the emitters' weights into the kernels as host-side constants
    that no input variable shows). A recording costs ~1.5x a traced pass, a replay ~0.5x.
    tests/render/test_template.py checks frozen and traced passes give the same pixels.
    """

    def __init__(
        self, capacity, num_point_lights, height, width, spp, max_depth, guides, freeze=True
    ):
        import mitsuba as mi

        self.template = mitsuba_template.SceneTemplate(
            capacity, num_point_lights, height, width, spp, NEAR_CLIP, FAR_CLIP
        )
        self.rgb = mi.load_dict({"type": "path", "max_depth": int(max_depth)})
        # With guides, one label pass also gives the denoiser's albedo (channels 5-7).
        # Nesting the path tracer inside the aov integrator instead doubled its cost.
        aovs = f"{_LABEL_AOVS},{_GUIDE_AOVS}" if guides else _LABEL_AOVS
        self.labels = mi.load_dict({"type": "aov", "aovs": aovs})
        self.spp = {"rgb": int(spp), "labels": 1}
        self._frozen = {}
        if freeze and not mi.variant().startswith("scalar"):
            import drjit as dr

            for name in ("rgb", "labels"):
                self._frozen[name] = dr.freeze(
                    _render_pass(self.spp[name]),
                    # The aov integrator of the label pass samples no emitter.
                    state_fn=self._emitter_pattern if name == "rgb" else None,
                    # Two recordings to start, then (rgb) one per emitter pattern (~4 occur).
                    warn_after=32,
                )

    def _emitter_pattern(self, *args):
        del args
        return self.template.emitter_pattern

    def render(self, sensor: str, seed: int) -> np.ndarray:
        """The ``sensor`` ("rgb" or "labels") pass of the current view, frozen if enabled."""
        integrator = self.labels if sensor == "labels" else self.rgb
        frozen = self._frozen.get(sensor)
        if frozen is None:
            return _render(self.template, sensor, integrator, self.spp[sensor], seed)
        import drjit as dr
        import mitsuba as mi

        # An opaque seed: a Python int would be part of the recording's key (one per seed).
        image = frozen(
            self.template.scene,
            self.template.sensors[sensor],
            integrator,
            dr.opaque(mi.UInt32, seed),
        )
        return np.array(image)


def _render_pass(spp: int):
    """``(scene, sensor, integrator, seed) -> image`` at ``spp`` samples, to be frozen."""
    import mitsuba as mi

    render = mi.render

    def render_pass(scene, sensor, integrator, seed):
        return render(scene, sensor=sensor, integrator=integrator, spp=spp, seed=seed)

    return render_pass


# Whether render passes are frozen functions (see _Renderer); tests switch it off to compare.
FREEZE_PASSES = True
_RENDERERS: dict = {}


def renderer_for(desc, height, width, spp, max_depth, guides) -> _Renderer:
    """This process's renderer for the settings, grown (rebuilt) only if ``desc`` needs more
    slots than any scene before it. Keeps one renderer per process (the latest settings)."""
    import mitsuba as mi

    # The variant too: a process may switch variants between renders (tests do).
    settings = (mi.variant(), height, width, spp, max_depth, guides, FREEZE_PASSES)
    renderer = _RENDERERS.get(settings)
    if renderer is not None and renderer.template.fits(desc):
        return renderer
    capacity = mitsuba_template.default_capacity()
    points = scene_lib.MAX_POINT_LIGHTS
    if renderer is not None:
        capacity, points = renderer.template.capacity, renderer.template.num_point_lights
    for key, count in mitsuba_template.needed_capacity(desc).items():
        capacity[key] = max(capacity.get(key, 0), count)
    _RENDERERS.clear()
    _RENDERERS[settings] = _Renderer(
        capacity,
        max(points, len(desc.lights)),
        height,
        width,
        spp,
        max_depth,
        guides,
        freeze=FREEZE_PASSES,
    )
    return _RENDERERS[settings]


def _render(template, sensor: str, integrator, spp: int, seed: int) -> np.ndarray:
    import mitsuba as mi

    return np.array(
        mi.render(
            template.scene,
            sensor=template.sensors[sensor],
            integrator=integrator,
            spp=int(spp),
            seed=seed,
        )
    )


def _reference_seed(seed: int) -> int:
    """A seed for the reference render whose samples are independent of the view's."""
    return int.from_bytes(hashlib.sha256(f"reference/{seed}".encode()).digest()[:4], "little")


def _view_rgb(renderer, seed, denoiser, labels, timed=_untimed):
    """(rgb, noisy) linear HDR [H, W, 3] of the current view; noisy is None undenoised.
    ``labels``: the view's label pass, whose albedo and normal guide the denoiser."""
    with timed("rgb pass"):
        rgb = renderer.render("rgb", seed)[..., :3]
    if denoiser is None:
        return rgb, None
    with timed("denoise"):
        return denoiser(rgb, labels[..., 5:8], labels[..., 1:4]), rgb


def _prepare(desc, height, width, spp, max_depth, variant, with_rgb, denoise):
    variant_lib.set_variant(variant)
    import drjit as dr

    denoiser = None
    if with_rgb and denoise != "off":
        denoiser = denoise_lib.make_denoiser(denoise, threads=dr.thread_count())
    renderer = renderer_for(desc, height, width, spp, max_depth, guides=denoiser is not None)
    renderer.template.apply(desc)
    return renderer, denoiser


def render_linear_rgb(
    desc, resolution, spp, max_depth=DEFAULT_MAX_DEPTH, variant="auto", denoise="off"
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """``(rgb, noisy)`` linear radiance per view (noisy is None when not denoised), for
    quality measurements (benchmarks/render_throughput.py). Same pixels as
    :func:`render_scene` before tone mapping; must run without TensorFlow loaded."""
    if tensorflow_conflict():
        raise RuntimeError("render_linear_rgb must run in a process without TensorFlow.")
    height, width = _size(resolution)
    variant = variant_lib.resolve_variant(variant)
    renderer, denoiser = _prepare(desc, height, width, spp, max_depth, variant, True, denoise)
    out = []
    for v, camera in enumerate(desc.cameras):
        template = renderer.template
        template.set_camera(camera)
        seed = render_seed(desc, v)
        labels = None
        if denoiser is not None:
            labels = renderer.render("labels", seed)
        out.append(_view_rgb(renderer, seed, denoiser, labels))
    return out


def render_scene_in_process(
    desc,
    resolution,
    spp,
    max_depth,
    variant,
    with_rgb,
    denoise=DEFAULT_DENOISE,
    keep_noisy=False,
    phase_times: PhaseTimes | None = None,
) -> list[dict]:
    """:func:`render_scene` in this process (only safe without TensorFlow loaded first).

    ``phase_times`` accumulates the CPU seconds of each phase (scene update, passes,
    denoising, label extraction)."""
    timed = phase_times or _untimed
    height, width = _size(resolution)
    with timed("scene update"):
        renderer, denoiser = _prepare(
            desc, height, width, spp, max_depth, variant, with_rgb, denoise
        )
    template = renderer.template
    lut = template.instance_lut()
    box = reference_crop_box(height, width)
    if keep_noisy and with_rgb:
        template.add_crop_sensor("reference", REFERENCE_SPP, box)
    samples = []
    for v, camera in enumerate(desc.cameras):
        with timed("scene update"):
            template.set_camera(camera)
        seed = render_seed(desc, v)
        with timed("labels pass"):
            labels = renderer.render("labels", seed)
        if with_rgb:
            rgb, noisy = _view_rgb(renderer, seed, denoiser, labels, timed)
        else:
            rgb, noisy = np.zeros((height, width, 3), np.float32), None
        intrinsics = geometry.intrinsics_from_fov(width, height, camera.fov_x)
        scene_name = f"seed{desc.seed}-scene{desc.scene_id:07d}"
        with timed("label extraction"):
            sample = _assemble(
                rgb, labels, lut, camera, intrinsics, scene_name, f"{scene_name}-view{v:02d}"
            )
        if keep_noisy:
            with timed("preview (noisy + reference crop)"):
                _add_previews(sample, template, renderer, rgb, noisy, seed, box, with_rgb)
        samples.append(sample)
    return samples


def _assemble(rgb, labels, lut, camera, intrinsics, scene_name, image_id) -> dict:
    return labels_lib.assemble_sample(
        linear_rgb=rgb,
        depth_aov=labels[..., 0],
        normal_aov=labels[..., 1:4],
        shape_index_aov=labels[..., 4],
        lut=lut,
        world_to_camera=scene_lib.world_to_opencv_rotation(camera),
        intrinsics=intrinsics,
        near_clip=NEAR_CLIP,
        scene_id=scene_name,
        image_id=image_id,
    )


def _add_previews(sample, template, renderer, rgb, noisy, seed, box, with_rgb) -> None:
    """``image_noisy`` and the reference crop, at the denoised image's exposure so that the
    three differ only by noise."""
    scale = labels_lib.exposure(rgb)
    sample["image_noisy"] = labels_lib.tonemap(rgb if noisy is None else noisy, scale=scale)
    if with_rgb:
        reference = _render(
            template, "reference", renderer.rgb, REFERENCE_SPP, _reference_seed(seed)
        )
        sample["image_reference_crop"] = labels_lib.tonemap(reference[..., :3], scale=scale)
        sample["reference_crop_box"] = box
