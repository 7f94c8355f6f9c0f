"""A fixed-structure Mitsuba scene that every procedural scene is written into.

Why: ``llvm_ad_rgb`` JIT-compiles its kernels for the *structure* of a scene (which shape,
BSDF and emitter plugins exist, and every compile-time constant in them), so loading each
scene with ``mi.load_dict`` paid a scene load and an LLVM compilation (~1 CPU s together) per
image. A template instead holds a fixed number of *slots* per ``(primitive kind, material
class, emissive)`` — enough for every scene of thousands that
:func:`mtsyn_tf.render.scene.make_scene` drew, grown once per process otherwise — plus two
sensors, and each scene only changes parameters through ``mi.traverse``: transforms (cube
vertices), texture data, roughness / conductor constants, emitter radiance and sampling
weights, sensor pose and FOV. All of these are opaque DrJit variables, so the
compiled kernels are reused from scene to scene (tests/render/test_template.py checks it
in DrJit's kernel history).

A ``roughplastic`` slot recomputes a transmittance table whenever its roughness changes
(~13 ms of CPU each), so its roughness is written only when it differs from the slot's
current value, and each slot has a *home* level of
:data:`~mtsyn_tf.render.scene.PLASTIC_ROUGHNESS_LEVELS` (slot ``k`` of its key: level
``k mod L``) that a primitive of that roughness takes first. The assignment is still a
pure function of the scene description (never of the scenes rendered before).

Unused slots are *parked*: shrunk and moved far below the floor, outside the closed room,
where no camera or bounce ray can reach them; their emitters get radiance 0 and sampling
weight 0. One point light stays parked in every scene, so the emitter weights are never
all equal (Mitsuba compiles a different kernel for uniform emitter sampling). Mitsuba keeps
the emitter distribution's range of non-zero weights and its total as host-side constants
compiled into the kernels, so frozen render passes are keyed by
:attr:`SceneTemplate.emitter_pattern` (every weight is 0 or 1).

Textures are all ``bitmap`` textures of one fixed size (:data:`TEXTURE_TEXELS` squared)
with an identity ``to_uv``, because ``to_uv`` is a compile-time constant and because the
render passes are Dr.Jit *frozen functions* (mitsuba_backend), which replay their recorded
kernels only while every input variable keeps its size. Each texture is the material
sampled at the texel centres of that grid: a ``bitmap`` material is its pattern tiled
``texture_scale`` times (bilinear, wrapping), which is what Mitsuba's repeat-wrapped lookup
with a scaled ``to_uv`` samples; a plain colour is a constant; a checkerboard is Mitsuba's
``checkerboard`` pattern at each texel centre (bilinear lookup softens each cell edge over
one texel instead of a hard step, a small deviation from Mitsuba's ``checkerboard``
texture).

Per-scene vertex buffers are built from Python lists, not NumPy arrays: Dr.Jit maps a NumPy
array's memory as it is, and whether that memory is 64-byte aligned (chance) is part of a
frozen function's input signature, so a mapped buffer made ~1 scene in 2 record again.
"""

from __future__ import annotations

import functools

import numpy as np

from mtsyn_tf.render import scene as scene_lib

# Far below the floor of every room (rooms span y in [0, 3.2]); shrunk to a millimetre.
PARK_TRANSFORM = scene_lib.chain(scene_lib.translate((0.0, -100.0, 0.0)), scene_lib.scale(1e-3))
# Side of every slot's texture. 128 texels resolve a checkerboard of up to 14 cells (the
# largest texture_scale, 7) with >= 9 texels per cell and a 32-texel pattern tiled up to 7
# times at >= 4 texels per tile period, while a slot's texture stays 192 KiB (written per
# scene for each primitive that uses the slot).
TEXTURE_TEXELS = 128
# Slots per (kind, material class, emissive) a template starts with: the most any of the
# scenes 0..1999 (seed 0) needs; all of 900 other scenes (ids 2000..2599, 1,000,000..
# 1,000,299) fit too (typical scenes use ~23 primitives). The worst case make_scene could
# draw needs ~200 slots, and every slot costs DrJit tracing time in each render (its
# shape and BSDF are recorded into every virtual call: ~2 ms CPU per slot), while a
# 99th-percentile-per-key template (81 slots) made 1 scene in 20 grow it, each growth a
# recompilation. A scene that needs more grows this process's template once, and a larger
# template renders the same pixels (tests/render/test_template.py).
DEFAULT_CAPACITY = {
    ("cube", "diffuse", False): 11,
    ("cube", "roughconductor", False): 7,
    ("cube", "roughplastic", False): 8,
    ("cylinder", "diffuse", False): 21,
    ("cylinder", "roughconductor", False): 16,
    ("cylinder", "roughplastic", False): 17,
    ("disk", "diffuse", False): 4,
    ("disk", "roughconductor", False): 2,
    ("disk", "roughplastic", False): 3,
    ("rectangle", "diffuse", False): 6,
    ("rectangle", "diffuse", True): scene_lib.MAX_AREA_LIGHTS,
    ("rectangle", "roughplastic", False): 5,
    ("sphere", "diffuse", False): 4,
    ("sphere", "roughconductor", False): 3,
    ("sphere", "roughplastic", False): 3,
}


def slot_key(prim: scene_lib.Primitive) -> tuple[str, str, bool]:
    return (prim.kind, prim.material.kind, prim.emission is not None)


def default_capacity() -> dict[tuple[str, str, bool], int]:
    return dict(DEFAULT_CAPACITY)


def needed_capacity(desc: scene_lib.SceneDescription) -> dict[tuple[str, str, bool], int]:
    counts: dict[tuple[str, str, bool], int] = {}
    for prim in desc.primitives:
        if prim.kind not in scene_lib.PRIMITIVE_KINDS:
            raise ValueError(f"Unknown primitive kind. Received: kind={prim.kind!r} ({prim.name})")
        if prim.material.kind not in scene_lib.MATERIAL_KINDS:
            raise ValueError(
                f"Unknown material kind. Received: kind={prim.material.kind!r} ({prim.name})"
            )
        counts[slot_key(prim)] = counts.get(slot_key(prim), 0) + 1
    return counts


def _texel_centres(texels: int, periods: int) -> np.ndarray:
    """Texel centres of a ``texels``-wide texture in units of a pattern repeated ``periods``
    times across it (uv in [0, 1) maps to [0, periods))."""
    return (np.arange(texels) + 0.5) * (periods / texels)


def _tile_bilinear(pattern: np.ndarray, scale: int, texels: int) -> np.ndarray:
    """``pattern`` [h, w, 3] tiled ``scale`` times, sampled bilinearly with wrapping at the
    centres of a ``texels`` x ``texels`` grid (Mitsuba's bitmap lookup: texel centres at
    half-integers)."""
    h, w, _ = pattern.shape

    def axis(n):
        x = _texel_centres(texels, scale) * n - 0.5
        i0 = np.floor(x).astype(np.int64)
        return i0 % n, (i0 + 1) % n, (x - i0).astype(np.float32)

    y0, y1, fy = axis(h)
    x0, x1, fx = axis(w)
    fx = fx[None, :, None]
    top = pattern[y0][:, x0] * (1 - fx) + pattern[y0][:, x1] * fx
    bottom = pattern[y1][:, x0] * (1 - fx) + pattern[y1][:, x1] * fx
    fy = fy[:, None, None]
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def texture_data(material: scene_lib.Material, color=None) -> np.ndarray:
    """Linear RGB float32 [T, T, 3], T = :data:`TEXTURE_TEXELS`, for a slot's bitmap texture
    (see module docstring)."""
    texels = TEXTURE_TEXELS
    color = np.asarray(material.color if color is None else color, np.float32)
    scale = int(round(material.texture_scale))
    if material.texture == "none":
        return np.broadcast_to(color, (texels, texels, 3)).copy()
    if scale != material.texture_scale or scale < 1:
        raise ValueError(f"texture_scale must be a positive int. Received: {material!r}")
    if material.texture == "checkerboard":
        # Mitsuba's checkerboard: colour0 where (frac(u) > .5) == (frac(v) > .5) of
        # uv * scale, i.e. 2 * scale cells per axis; cell (i, j) is colour0 iff i % 2 == j % 2.
        cells = np.floor(_texel_centres(texels, 2 * scale)).astype(np.int64)
        same = (cells[:, None] % 2) == (cells[None, :] % 2)
        other = np.asarray(material.color2, np.float32)
        return np.where(same[..., None], color, other).astype(np.float32)
    if material.texture == "bitmap":
        return _tile_bilinear(np.asarray(material.bitmap, np.float32), scale, texels)
    raise ValueError(f"Unknown texture kind. Received: texture={material.texture!r}")


@functools.cache
def conductor_constants(conductor: str) -> tuple[np.ndarray, np.ndarray]:
    """(eta, k) RGB of a named conductor, as Mitsuba's ``material=`` parameter loads them."""
    import mitsuba as mi

    if conductor not in scene_lib.CONDUCTORS:
        raise ValueError(f"Unknown conductor. Received: conductor={conductor!r}")
    params = mi.traverse(mi.load_dict({"type": "roughconductor", "material": conductor}))
    return (
        np.array(params["eta.value"], np.float32).reshape(3),
        np.array(params["k.value"], np.float32).reshape(3),
    )


def _bitmap(mi):
    grey = np.full((TEXTURE_TEXELS, TEXTURE_TEXELS, 3), 0.5, np.float32)
    return {"type": "bitmap", "bitmap": mi.Bitmap(grey), "raw": True}


def _slot_bsdf(mi, cls: str) -> dict:
    if cls == "diffuse":
        inner = {"type": "diffuse", "reflectance": _bitmap(mi)}
    elif cls == "roughplastic":
        inner = {
            "type": "roughplastic",
            "distribution": "ggx",
            "alpha": 0.3,
            "diffuse_reflectance": _bitmap(mi),
        }
    else:
        inner = {"type": "roughconductor", "distribution": "ggx", "alpha": 0.3, "material": "Al"}
    # Two-sided so thin parts shade sensibly from either side.
    return {"type": "twosided", "bsdf": inner}


def _transform(mi, matrix):
    return mi.ScalarTransform4f(np.asarray(matrix, dtype=np.float64).tolist())


def _set_always(params, key: str, value) -> None:
    """``params[key] = value`` without SceneParameters' equality check, which raises in
    scalar variants when a texture's resolution changes (and costs a comparison anyway)."""
    cur, value_type, _, _ = params.properties[key]
    params.set_dirty(key)
    if value_type is None:
        params.set_property(cur, value)
    else:
        params.set_property(cur, value_type, value)


def _opaque(value):
    """``value`` as an opaque DrJit variable: a literal would be compiled into the kernel
    (e.g. an area light's transform in ``Emitter::sample_direction``), so every new value
    would mean a new kernel."""
    import drjit as dr

    dr.make_opaque(value)
    return value


def _home_roughness(index: int) -> float:
    levels = scene_lib.PLASTIC_ROUGHNESS_LEVELS
    return levels[index % len(levels)]


def assign_slots(slots, primitives) -> dict[str, scene_lib.Primitive]:
    """Slot name -> primitive: each primitive takes the first free slot of its
    :func:`slot_key`. A ``roughplastic`` primitive instead takes the first free slot whose
    home roughness (:func:`_home_roughness` of its index within the key) is its own, else
    the last free slot (the tail slots, which few scenes reach, absorb the overflow), so
    that slots rarely change roughness: 2.2 roughness writes per scene instead of 7.1
    (scenes 500000-500299). ``slots``: (name, key) in template order. A pure function of
    its arguments, so a scene lands in the same slots whatever was rendered before."""
    free: dict[tuple, list[tuple[int, str]]] = {}
    for name, key in slots:
        members = free.setdefault(key, [])
        members.append((len(members), name))
    assignment = {}
    for prim in primitives:
        candidates = free[slot_key(prim)]
        pick = 0
        if prim.material.kind == "roughplastic":
            roughness = prim.material.roughness
            homes = [i for i, (k, _) in enumerate(candidates) if _home_roughness(k) == roughness]
            pick = homes[0] if homes else len(candidates) - 1
        assignment[candidates.pop(pick)[1]] = prim
    return assignment


class SceneTemplate:
    """A loaded Mitsuba scene with fixed slots, re-parameterised per scene description.

    Args:
        capacity: slots per ``(kind, material class, emissive)``; see :func:`default_capacity`.
        num_point_lights: point-light slots; one more is added and always stays parked.
        height, width: film size of both sensors.
        spp: samples per pixel of the ``rgb`` sensor's sampler.
        near_clip, far_clip: both sensors' clip planes.
    """

    def __init__(self, capacity, num_point_lights, height, width, spp, near_clip, far_clip):
        import mitsuba as mi

        self._mi = mi
        self.capacity = dict(sorted(capacity.items()))
        self.num_point_lights = int(num_point_lights)
        self.slots: list[tuple[str, tuple[str, str, bool]]] = []
        scene = {"type": "scene"}
        for key, count in self.capacity.items():
            kind, cls, emissive = key
            for k in range(count):
                name = f"{kind}_{cls}{'_emitter' if emissive else ''}_{k:03d}"
                shape = {
                    "type": kind,
                    "to_world": _transform(mi, PARK_TRANSFORM),
                    "bsdf": _slot_bsdf(mi, cls),
                }
                if emissive:
                    shape["emitter"] = {"type": "area", "radiance": {"type": "rgb", "value": 0.0}}
                scene[name] = shape
                self.slots.append((name, key))
        self.point_slots = [f"point_light_{k:03d}" for k in range(self.num_point_lights + 1)]
        for name in self.point_slots:
            scene[name] = {
                "type": "point",
                "position": PARK_TRANSFORM[:3, 3].tolist(),
                "intensity": {"type": "rgb", "value": 0.0},
            }
        # optimize=False: Mitsuba would otherwise merge meshes that share a BSDF into one
        # anonymous shape, and the shape_index AOV could no longer tell slots apart.
        self.scene = mi.load_dict(scene, optimize=False)
        self.params = mi.traverse(self.scene)
        self.sensors = {
            "rgb": mi.load_dict(
                self._sensor_dict(height, width, near_clip, far_clip, spp, jitter=True)
            ),
            "labels": mi.load_dict(
                self._sensor_dict(height, width, near_clip, far_clip, 1, jitter=False)
            ),
        }
        self.sensor_params = {k: mi.traverse(s) for k, s in self.sensors.items()}
        # Unit cube vertices / normals in the cube's local frame (loaded at the park pose).
        self._cube_local = {}
        inv_park = np.linalg.inv(PARK_TRANSFORM)
        for name, (kind, _, _) in self.slots:
            if kind == "cube":
                v = np.array(self.params[f"{name}.vertex_positions"], np.float64).reshape(-1, 3)
                n = np.array(self.params[f"{name}.vertex_normals"], np.float64).reshape(-1, 3)
                self._cube_local[name] = (v @ inv_park[:3, :3].T + inv_park[:3, 3], n)
        self.slot_of_shape_value = self._shape_values()
        # Every slot counts as "in use" until the first apply() parks it explicitly: that
        # sets the unused emitters' sampling weight to 0 (it loads as 1), so a fresh
        # template and a reused one hold the same values.
        self.active: dict[str, scene_lib.Primitive] = dict.fromkeys(n for n, _ in self.slots)
        self.scenes_applied = 0
        # Emitter slot -> sampling weight > 0 (all load with weight 1).
        self._emitting = {name: True for name, (_, _, emissive) in self.slots if emissive}
        self._emitting.update(dict.fromkeys(self.point_slots, True))
        # Roughness each roughplastic slot holds now (None: as loaded, not yet written).
        self._plastic_alpha = {
            name: None for name, (_, cls, _) in self.slots if cls == "roughplastic"
        }

    @staticmethod
    def _sensor_dict(height, width, near_clip, far_clip, spp, jitter) -> dict:
        # rgb: jittered independent samples (antialiased). labels: one non-jittered
        # stratified sample through each pixel centre with a radius-0.5 box filter, so ids
        # are never blended and depth / normals are exact at the pixel centre.
        sampler = (
            {"type": "independent", "sample_count": int(spp)}
            if jitter
            else {"type": "stratified", "sample_count": 1, "jitter": False}
        )
        return {
            "type": "perspective",
            "fov": 60.0,
            "fov_axis": "x",
            "near_clip": near_clip,
            "far_clip": far_clip,
            "sampler": sampler,
            "film": {
                "type": "hdrfilm",
                "width": int(width),
                "height": int(height),
                "rfilter": {"type": "box"},
                "pixel_format": "rgb",
                "sample_border": False,
            },
        }

    def _shape_values(self) -> dict[int, str]:
        """``shape_index`` AOV value → slot name.

        The AOV reports ``si.shape`` reinterpreted as an integer: in JIT variants the
        shape's registry id, in scalar variants its 1-based position in ``scene.shapes()``.
        Both are fixed for the template's lifetime.
        """
        mi = self._mi
        import drjit as dr

        shapes = list(self.scene.shapes())
        if mi.variant().startswith("scalar"):
            values = list(range(1, len(shapes) + 1))
        else:
            values = [
                int(v) for v in np.asarray(dr.reinterpret_array(mi.UInt32, mi.ShapePtr(shapes)))
            ]
        return {value: shape.id() for value, shape in zip(values, shapes)}

    def fits(self, desc: scene_lib.SceneDescription) -> bool:
        needed = needed_capacity(desc)
        return (
            all(n <= self.capacity.get(k, 0) for k, n in needed.items())
            and len(desc.lights) <= self.num_point_lights
        )

    # ------------------------------------------------------------------------- updates

    def _set_pose(self, name: str, kind: str, to_world: np.ndarray) -> None:
        mi, p = self._mi, self.params
        if kind == "cube":
            v, n = self._cube_local[name]
            m = np.asarray(to_world, np.float64)
            normals = n @ np.linalg.inv(m[:3, :3])  # (M^-T n) for row vectors
            normals /= np.linalg.norm(normals, axis=1, keepdims=True)
            buffer = type(p[f"{name}.vertex_positions"])  # mi.Float, or ArrayXf in scalar
            # From lists, not NumPy arrays: see the module docstring (mapped memory).
            positions = (v @ m[:3, :3].T + m[:3, 3]).ravel().tolist()
            p[f"{name}.vertex_positions"] = _opaque(buffer(positions))
            p[f"{name}.vertex_normals"] = _opaque(buffer(normals.ravel().tolist()))
        else:
            p[f"{name}.to_world"] = _opaque(
                mi.Transform4f(np.asarray(to_world, np.float64).tolist())
            )

    def _set_material(self, name: str, material: scene_lib.Material) -> None:
        mi, p = self._mi, self.params
        base = f"{name}.bsdf.brdf_0"
        if material.kind == "diffuse":
            _set_always(p, f"{base}.reflectance.data", mi.TensorXf(texture_data(material)))
        elif material.kind == "roughplastic":
            if self._plastic_alpha[name] != material.roughness:
                p[f"{base}.alpha"] = _opaque(mi.Float(material.roughness))
                self._plastic_alpha[name] = material.roughness
            _set_always(p, f"{base}.diffuse_reflectance.data", mi.TensorXf(texture_data(material)))
        else:
            eta, k = conductor_constants(material.conductor)
            p[f"{base}.alpha.value"] = _opaque(mi.Float(material.roughness))
            p[f"{base}.eta.value"] = _opaque(mi.Color3f(*eta.tolist()))
            p[f"{base}.k.value"] = _opaque(mi.Color3f(*k.tolist()))

    def _set_emitter(self, name: str, radiance, weight: float) -> None:
        self.params[f"{name}.emitter.radiance.value"] = _opaque(
            self._mi.Color3f(*map(float, radiance))
        )
        self.params[f"{name}.emitter.sampling_weight"] = float(weight)
        self._emitting[name] = weight > 0

    def _set_point(self, name: str, position, intensity, weight: float) -> None:
        mi, p = self._mi, self.params
        p[f"{name}.position"] = _opaque(mi.Point3f(*map(float, position)))
        p[f"{name}.intensity.value"] = _opaque(mi.Color3f(*map(float, intensity)))
        p[f"{name}.sampling_weight"] = float(weight)
        self._emitting[name] = weight > 0

    @property
    def emitter_pattern(self) -> str:
        """Which emitter slots have a non-zero sampling weight now, e.g. ``"1101"``. Mitsuba
        keeps the range of emitters with non-zero weight and the weights' total as host-side
        constants compiled into the kernels, so a frozen render pass must be recorded once per
        pattern (a handful occur; with weights of 0 or 1 the pattern fixes both). A string:
        Dr.Jit would turn Python bools into (auto-opaque) JIT literals."""
        return "".join("1" if self._emitting[name] else "0" for name in sorted(self._emitting))

    def apply(self, desc: scene_lib.SceneDescription) -> dict[str, scene_lib.Primitive]:
        """Writes ``desc`` into the slots; returns slot name → primitive for used slots.

        Slots are filled in primitive order, so the same description always lands in the
        same slots, and every slot the previous scene used but this one does not is parked.
        """
        if not self.fits(desc):
            raise ValueError(
                f"Scene needs {needed_capacity(desc)} slots and {len(desc.lights)} point "
                f"lights; the template has {self.capacity} and {self.num_point_lights}."
            )
        assignment = assign_slots(self.slots, desc.primitives)
        for name, key in self.slots:
            kind, _, emissive = key
            prim = assignment.get(name)
            if prim is not None:
                self._set_pose(name, kind, prim.to_world)
                self._set_material(name, prim.material)
                if emissive:
                    self._set_emitter(name, prim.emission, 1.0)
            elif name in self.active:
                self._set_pose(name, kind, PARK_TRANSFORM)
                if emissive:
                    self._set_emitter(name, (0.0, 0.0, 0.0), 0.0)
        any_emitter = any(p.emission is not None for p in desc.primitives) or desc.lights
        for k, name in enumerate(self.point_slots):
            if k < len(desc.lights):
                light = desc.lights[k]
                self._set_point(name, light.position, light.intensity, 1.0)
            else:
                # The last (always parked) point light carries the emitter-sampling mass
                # of a scene without lights: Mitsuba needs a non-zero total weight.
                fallback = k == len(self.point_slots) - 1 and not any_emitter
                self._set_point(name, PARK_TRANSFORM[:3, 3], (0.0, 0.0, 0.0), float(fallback))
        self.params.update()
        self.active = assignment
        self.scenes_applied += 1
        return assignment

    def add_crop_sensor(self, name: str, spp: int, box: tuple[int, int, int]) -> None:
        """Adds (once) a jittered ``spp`` sensor that renders only the square crop ``box`` =
        (top, left, size) of the full film: the same camera rays as the ``rgb`` sensor's
        pixels there. :meth:`set_camera` moves it with the others."""
        if name in self.sensors:
            return
        mi = self._mi
        rgb = self.sensors["rgb"].film().size()
        height, width = int(rgb[1]), int(rgb[0])
        top, left, size = (int(v) for v in box)
        if not (
            0 <= top and 0 <= left and size >= 1 and top + size <= height and left + size <= width
        ):
            raise ValueError(f"Crop box outside the {height}x{width} film. Received: box={box}")
        near, far = self.sensor_params["rgb"]["near_clip"], self.sensor_params["rgb"]["far_clip"]
        sensor = self._sensor_dict(height, width, near, far, spp, jitter=True)
        sensor["film"].update(
            crop_offset_x=left, crop_offset_y=top, crop_width=size, crop_height=size
        )
        self.sensors[name] = mi.load_dict(sensor)
        self.sensor_params[name] = mi.traverse(self.sensors[name])

    def set_camera(self, camera: scene_lib.Camera) -> None:
        mi = self._mi
        to_world = _opaque(mi.Transform4f(scene_lib.camera_to_world(camera).tolist()))
        for params in self.sensor_params.values():
            params["to_world"] = to_world
            params["x_fov"] = _opaque(mi.Float(camera.fov_x))
            params.update()

    def instance_lut(self) -> dict[int, int]:
        """``shape_index`` AOV value → instance id of the primitive in that slot now."""
        return {
            value: self.active[name].instance
            for value, name in self.slot_of_shape_value.items()
            if name in self.active
        }
