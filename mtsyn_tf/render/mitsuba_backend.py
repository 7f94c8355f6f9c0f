"""Renders a :class:`~mtsyn_tf.render.scene.SceneDescription` with Mitsuba 3.

Each view gets two sensors sharing one pose:

* ``rgb``: path tracing at ``spp`` samples, box filter, jittered samples (antialiased);
* ``labels``: the ``aov`` integrator (depth, shading normal, shape index) at 1 spp
  through a *non-jittered* stratified sampler and a radius-0.5 box filter, i.e. exactly
  one ray through each pixel centre, so ids are never blended and depth/normals are
  the exact values at the pixel centre (which the closed-form tests rely on).

Both integrators render the same loaded scene, and fixed sampler seeds make every render
reproducible bit for bit.
"""

from __future__ import annotations

import atexit
import hashlib
import multiprocessing
import sys

import numpy as np

from mtsyn_tf import geometry
from mtsyn_tf.render import labels as labels_lib
from mtsyn_tf.render import scene as scene_lib
from mtsyn_tf.render import variant as variant_lib

NEAR_CLIP = 1e-3
FAR_CLIP = 1e4
DEFAULT_SPP = 16
DEFAULT_MAX_DEPTH = 4
_AOVS = "dd:depth,nn:sh_normal,si:shape_index"


def _size(resolution) -> tuple[int, int]:
    """``resolution`` as (height, width) from an int or a pair."""
    hw = (resolution, resolution) if np.isscalar(resolution) else tuple(resolution)
    if len(hw) != 2 or any(int(v) != v or v < 2 for v in hw):
        raise ValueError(
            f"resolution must be an int >= 2 or (height, width). Received: {resolution!r}"
        )
    return int(hw[0]), int(hw[1])


def _transform(mi, matrix):
    return mi.ScalarTransform4f(np.asarray(matrix, dtype=np.float64).tolist())


def _rgb(value) -> dict:
    return {"type": "rgb", "value": [float(v) for v in value]}


def _texture(mi, material: scene_lib.Material, color):
    if material.texture == "none":
        return _rgb(color)
    to_uv = mi.ScalarTransform4f().scale([material.texture_scale, material.texture_scale, 1.0])
    if material.texture == "checkerboard":
        return {
            "type": "checkerboard",
            "color0": _rgb(color),
            "color1": _rgb(material.color2),
            "to_uv": to_uv,
        }
    if material.texture == "bitmap":
        return {"type": "bitmap", "bitmap": mi.Bitmap(material.bitmap), "raw": True, "to_uv": to_uv}
    raise ValueError(f"Unknown texture kind. Received: texture={material.texture!r}")


def material_to_bsdf(mi, material: scene_lib.Material) -> dict:
    """Mitsuba BSDF dict, two-sided so thin parts shade sensibly from either side."""
    if material.kind == "diffuse":
        inner = {"type": "diffuse", "reflectance": _texture(mi, material, material.color)}
    elif material.kind == "roughplastic":
        inner = {
            "type": "roughplastic",
            "distribution": "ggx",
            "alpha": material.roughness,
            "diffuse_reflectance": _texture(mi, material, material.color),
        }
    elif material.kind == "roughconductor":
        inner = {
            "type": "roughconductor",
            "distribution": "ggx",
            "alpha": material.roughness,
            "material": material.conductor,
        }
    else:
        raise ValueError(f"Unknown material kind. Received: kind={material.kind!r}")
    return {"type": "twosided", "bsdf": inner}


def _sensor(mi, camera: scene_lib.Camera, height: int, width: int, sampler: dict) -> dict:
    return {
        "type": "perspective",
        "fov": float(camera.fov_x),
        "fov_axis": "x",
        "near_clip": NEAR_CLIP,
        "far_clip": FAR_CLIP,
        "to_world": _transform(mi, scene_lib.camera_to_world(camera)),
        "sampler": sampler,
        "film": {
            "type": "hdrfilm",
            "width": width,
            "height": height,
            "rfilter": {"type": "box"},
            "pixel_format": "rgb",
            "sample_border": False,
        },
    }


def scene_to_mitsuba_dict(
    desc: scene_lib.SceneDescription, resolution, spp: int = DEFAULT_SPP
) -> dict:
    """Mitsuba scene dict: shapes keyed by primitive name, sensors ``rgb{v}`` / ``labels{v}``."""
    import mitsuba as mi

    height, width = _size(resolution)
    out = {"type": "scene"}
    for prim in desc.primitives:
        if prim.kind not in scene_lib.PRIMITIVE_KINDS:
            raise ValueError(f"Unknown primitive kind. Received: kind={prim.kind!r} ({prim.name})")
        shape = {
            "type": prim.kind,
            "to_world": _transform(mi, prim.to_world),
            "bsdf": material_to_bsdf(mi, prim.material),
        }
        if prim.emission is not None:
            shape["emitter"] = {"type": "area", "radiance": _rgb(prim.emission)}
        out[prim.name] = shape
    for k, light in enumerate(desc.lights):
        out[f"point_light{k}"] = {
            "type": "point",
            "position": list(light.position),
            "intensity": _rgb(light.intensity),
        }
    for v, camera in enumerate(desc.cameras):
        out[f"rgb{v}"] = _sensor(
            mi, camera, height, width, {"type": "independent", "sample_count": int(spp)}
        )
        out[f"labels{v}"] = _sensor(
            mi, camera, height, width, {"type": "stratified", "sample_count": 1, "jitter": False}
        )
    return out


def shape_index_lut(mi, scene, desc: scene_lib.SceneDescription) -> dict[int, int]:
    """``shape_index`` AOV value → instance id, for the active variant.

    The AOV reports ``si.shape`` reinterpreted as an integer: in JIT variants that is the
    shape's registry id (not stable across scene loads), in scalar variants it is the
    1-based position in ``scene.shapes()``. Either way we map it back through the shape's
    ``id()``, which is the primitive name we gave it.
    """
    import drjit as dr

    shapes = list(scene.shapes())
    if mi.variant().startswith("scalar"):
        values = list(range(1, len(shapes) + 1))
    else:
        values = [int(v) for v in np.asarray(dr.reinterpret_array(mi.UInt32, mi.ShapePtr(shapes)))]
    instance_of = {p.name: p.instance for p in desc.primitives}
    lut = {}
    for value, shape in zip(values, shapes):
        if shape.id() not in instance_of:
            raise ValueError(f"Rendered shape {shape.id()!r} is not in the scene description.")
        lut[value] = instance_of[shape.id()]
    return lut


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
) -> list[dict]:
    """Renders every view of ``desc``; returns one CONTRACTS.md sample dict per view.

    ``with_rgb=False`` skips path tracing (image is all zeros), for label-only tests.
    If TensorFlow is already loaded in this process (see :func:`tensorflow_conflict`) the
    render runs in a helper process; results are identical either way.
    """
    if int(spp) < 1:
        raise ValueError(f"spp must be >= 1. Received: spp={spp}")
    if int(max_depth) < 1:
        raise ValueError(f"max_depth must be >= 1. Received: max_depth={max_depth}")
    _size(resolution)
    args = (
        desc,
        resolution,
        int(spp),
        int(max_depth),
        variant_lib.resolve_variant(variant),
        with_rgb,
    )
    if tensorflow_conflict():
        return _isolated_pool().apply(render_scene_in_process, args)
    return render_scene_in_process(*args)


def render_scene_in_process(desc, resolution, spp, max_depth, variant, with_rgb) -> list[dict]:
    """:func:`render_scene` in this process (only safe without TensorFlow loaded first)."""
    variant_lib.set_variant(variant)
    import mitsuba as mi

    height, width = _size(resolution)
    # optimize=False: Mitsuba would otherwise merge meshes that share a BSDF into one
    # anonymous shape, and the shape_index AOV could no longer tell instances apart.
    scene = mi.load_dict(scene_to_mitsuba_dict(desc, (height, width), spp), optimize=False)
    sensors = {s.id(): s for s in scene.sensors()}
    path = mi.load_dict({"type": "path", "max_depth": int(max_depth)})
    aov = mi.load_dict({"type": "aov", "aovs": _AOVS})
    lut = shape_index_lut(mi, scene, desc)
    samples = []
    for v, camera in enumerate(desc.cameras):
        seed = render_seed(desc, v)
        labels = np.array(
            mi.render(scene, sensor=sensors[f"labels{v}"], integrator=aov, spp=1, seed=seed)
        )
        if with_rgb:
            rgb = np.array(
                mi.render(
                    scene, sensor=sensors[f"rgb{v}"], integrator=path, spp=int(spp), seed=seed
                )
            )
        else:
            rgb = np.zeros((height, width, 3), np.float32)
        intrinsics = geometry.intrinsics_from_fov(width, height, camera.fov_x)
        scene_name = f"seed{desc.seed}-scene{desc.scene_id:07d}"
        samples.append(
            labels_lib.assemble_sample(
                linear_rgb=rgb[..., :3],
                depth_aov=labels[..., 0],
                normal_aov=labels[..., 1:4],
                shape_index_aov=labels[..., 4],
                lut=lut,
                world_to_camera=scene_lib.world_to_opencv_rotation(camera),
                intrinsics=intrinsics,
                near_clip=NEAR_CLIP,
                scene_id=scene_name,
                image_id=f"{scene_name}-view{v:02d}",
            )
        )
    return samples
