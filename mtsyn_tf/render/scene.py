"""Seeded procedural indoor scenes, described in plain Python / numpy.

The description is renderer-agnostic (no Mitsuba import): a box-shaped room, a few
furniture-like objects assembled from primitives, materials, lights and one camera per
view. Everything is drawn from ``np.random.default_rng([seed, scene_id])``, so the same
``(scene_id, seed)`` gives the same scene bit for bit on any machine, and scenes can be
generated independently by any worker.

World frame: y up, the floor is the plane y = 0, the room spans ``[0, width] x [0, height]
x [0, depth]``. Primitives are unit shapes placed by a 4x4 ``to_world`` matrix:

* ``rectangle``: the square ``[-1, 1]^2`` in the z = 0 plane, normal +z;
* ``cube``: ``[-1, 1]^3``;
* ``cylinder``: radius 1 around the z axis from z = 0 to z = 1, open ended;
* ``disk``: the unit disk in the z = 0 plane, normal +z;
* ``sphere``: the unit sphere at the origin.
"""

from __future__ import annotations

import dataclasses

import numpy as np

PRIMITIVE_KINDS = ("rectangle", "cube", "cylinder", "disk", "sphere")
MATERIAL_KINDS = ("diffuse", "roughconductor", "roughplastic")
TEXTURE_KINDS = ("none", "checkerboard", "bitmap")
CONDUCTORS = ("Al", "Cu", "Au", "Cr", "Ag")
WORLD_UP = (0.0, 1.0, 0.0)
# Upper bounds of the generator (make_scene draws 3..MAX_OBJECTS objects, 1..MAX_AREA_LIGHTS
# ceiling panels, at most MAX_POINT_LIGHTS point lights); the renderer sizes its fixed
# scene template from them (mitsuba_template.default_capacity).
MAX_OBJECTS = 8
MAX_AREA_LIGHTS = 2
MAX_POINT_LIGHTS = 1
# Roughness of ``roughplastic`` materials: the centres of four equal bins of [0.1, 0.5].
# Why discrete: Mitsuba's roughplastic precomputes a transmittance table whenever its
# roughness changes (~13 ms of CPU, 1/6 of a fresh image), and with a few levels the
# renderer's template keeps each level in its own slots (mitsuba_template.SceneTemplate).
PLASTIC_ROUGHNESS_LEVELS = (0.15, 0.25, 0.35, 0.45)


@dataclasses.dataclass(frozen=True)
class Material:
    """A surface material; ``color`` is the base (linear RGB) reflectance."""

    kind: str
    color: tuple[float, float, float]
    roughness: float = 0.5
    conductor: str = "Al"
    texture: str = "none"
    color2: tuple[float, float, float] = (0.0, 0.0, 0.0)
    texture_scale: float = 1.0
    # Linear RGB float32 [h, w, 3] for texture == "bitmap", generated with numpy.
    bitmap: np.ndarray | None = dataclasses.field(default=None, compare=False)


@dataclasses.dataclass(frozen=True)
class Primitive:
    """One renderable shape; ``instance`` groups the parts of one object (table top + legs)."""

    name: str
    kind: str
    to_world: np.ndarray
    material: Material
    instance: int
    emission: tuple[float, float, float] | None = None


@dataclasses.dataclass(frozen=True)
class Light:
    """A point light (area lights are emissive primitives instead)."""

    position: tuple[float, float, float]
    intensity: tuple[float, float, float]


@dataclasses.dataclass(frozen=True)
class Camera:
    """A pinhole camera looking from ``origin`` at ``target`` with horizontal FOV ``fov_x``."""

    origin: tuple[float, float, float]
    target: tuple[float, float, float]
    fov_x: float
    up: tuple[float, float, float] = WORLD_UP


@dataclasses.dataclass(frozen=True)
class SceneDescription:
    scene_id: int
    seed: int
    room_size: tuple[float, float, float]  # width (x), height (y), depth (z)
    primitives: tuple[Primitive, ...]
    lights: tuple[Light, ...]
    cameras: tuple[Camera, ...]

    @property
    def num_instances(self) -> int:
        return 1 + max(p.instance for p in self.primitives)


# ----------------------------------------------------------------------------- transforms


def translate(t) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = t
    return m


def scale(s) -> np.ndarray:
    return np.diag([*np.broadcast_to(np.asarray(s, dtype=np.float64), (3,)), 1.0])


def rotate(axis: str, degrees: float) -> np.ndarray:
    """Right-handed rotation about a coordinate axis."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    m = np.eye(4)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def chain(*matrices) -> np.ndarray:
    """``chain(A, B, C) = A @ B @ C``: C is applied first."""
    out = np.eye(4)
    for m in matrices:
        out = out @ m
    return out


def look_at_rotation(origin, target, up=WORLD_UP) -> np.ndarray:
    """Columns (left, up, forward): Mitsuba's ``look_at`` camera-to-world rotation.

    Mitsuba's camera frame is x-left, y-up, z-forward; image column u grows toward -x and
    row v grows toward -y. The OpenCV frame (x right, y down, z forward) is therefore
    ``diag(-1, -1, 1)`` of Mitsuba's, see :func:`world_to_opencv_rotation`.
    """
    origin, target, up = (np.asarray(v, dtype=np.float64) for v in (origin, target, up))
    forward = target - origin
    norm = np.linalg.norm(forward)
    if norm < 1e-9:
        raise ValueError(f"Camera target equals origin. Received: origin={origin}, target={target}")
    forward /= norm
    left = np.cross(up, forward)
    if np.linalg.norm(left) < 1e-9:
        raise ValueError(f"Camera up is parallel to the view direction. Received: up={up}")
    left /= np.linalg.norm(left)
    new_up = np.cross(forward, left)
    return np.stack([left, new_up, forward], axis=1)


def camera_to_world(camera: Camera) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = look_at_rotation(camera.origin, camera.target, camera.up)
    m[:3, 3] = camera.origin
    return m


def world_to_opencv_rotation(camera: Camera) -> np.ndarray:
    """Rotation taking world vectors into the OpenCV camera frame (x right, y down, z fwd)."""
    return np.diag([-1.0, -1.0, 1.0]) @ look_at_rotation(camera.origin, camera.target, camera.up).T


# ----------------------------------------------------------------------------- materials


def _color(rng, lo=0.05, hi=0.85) -> tuple[float, float, float]:
    return tuple(float(c) for c in rng.uniform(lo, hi, size=3))


def _bitmap_texture(rng, size: int = 32) -> np.ndarray:
    """Stripes or smooth blobs: a cheap numpy texture with structure inside one object."""
    a, b = np.asarray(_color(rng)), np.asarray(_color(rng))
    yy, xx = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    if rng.random() < 0.5:
        freq, angle = rng.integers(2, 8), rng.uniform(0, np.pi)
        t = 0.5 + 0.5 * np.sign(
            np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)))
        )
    else:
        t = np.zeros_like(xx)
        for _ in range(4):
            cx, cy, s = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.3)
            t += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
        t = np.clip(t / max(t.max(), 1e-6), 0, 1)
    return (a * t[..., None] + b * (1 - t[..., None])).astype(np.float32)


def random_material(rng, allow_metal: bool = True) -> Material:
    kinds = MATERIAL_KINDS if allow_metal else ("diffuse", "roughplastic")
    p = [0.5, 0.2, 0.3] if allow_metal else [0.6, 0.4]
    kind = str(rng.choice(kinds, p=p))
    color = _color(rng)
    roughness = float(rng.uniform(0.1, 0.5))
    if kind == "roughplastic":
        levels = PLASTIC_ROUGHNESS_LEVELS
        roughness = levels[min(int((roughness - 0.1) / 0.4 * len(levels)), len(levels) - 1)]
    conductor = str(rng.choice(CONDUCTORS))
    texture = "none"
    if kind != "roughconductor":
        texture = str(rng.choice(TEXTURE_KINDS, p=[0.5, 0.25, 0.25]))
    color2 = _color(rng)
    texture_scale = float(rng.integers(2, 8))
    bitmap = _bitmap_texture(rng) if texture == "bitmap" else None
    return Material(kind, color, roughness, conductor, texture, color2, texture_scale, bitmap)


# ----------------------------------------------------------------------------- objects


def _box(name, center, size, yaw, material, instance) -> Primitive:
    """Axis-aligned (then yawed) box of full extents ``size`` centred at ``center``."""
    m = chain(translate(center), rotate("y", yaw), scale(np.asarray(size) / 2.0))
    return Primitive(name, "cube", m, material, instance)


def _vertical_cylinder(name, base, radius, height, material, instance) -> Primitive:
    # Unit cylinder runs along +z; rotating -90 degrees about x maps +z to +y.
    m = chain(translate(base), rotate("x", -90.0), scale((radius, radius, height)))
    return Primitive(name, "cylinder", m, material, instance)


def _disk_up(name, center, radius, material, instance) -> Primitive:
    m = chain(translate(center), rotate("x", -90.0), scale((radius, radius, 1.0)))
    return Primitive(name, "disk", m, material, instance)


def _local_to_world(x, z, yaw, dx, dz):
    r = rotate("y", yaw)[:3, :3]
    off = r @ np.array([dx, 0.0, dz])
    return x + off[0], z + off[2]


def _make_table(rng, x, z, yaw, inst, prefix):
    w, d = rng.uniform(0.8, 1.6), rng.uniform(0.6, 1.0)
    h, top, leg_r = rng.uniform(0.65, 0.8), rng.uniform(0.03, 0.06), rng.uniform(0.025, 0.05)
    top_mat, leg_mat = random_material(rng), random_material(rng)
    parts = [_box(f"{prefix}_top", (x, h - top / 2, z), (w, top, d), yaw, top_mat, inst)]
    for k, (sx, sz) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
        lx, lz = _local_to_world(x, z, yaw, sx * (w / 2 - 2 * leg_r), sz * (d / 2 - 2 * leg_r))
        parts.append(
            _vertical_cylinder(f"{prefix}_leg{k}", (lx, 0.0, lz), leg_r, h - top, leg_mat, inst)
        )
    return parts, 0.5 * np.hypot(w, d), h


def _make_chair(rng, x, z, yaw, inst, prefix):
    s, h, leg_r = rng.uniform(0.4, 0.5), rng.uniform(0.42, 0.5), 0.02
    mat, leg_mat = random_material(rng), random_material(rng)
    back_h = rng.uniform(0.35, 0.5)
    parts = [_box(f"{prefix}_seat", (x, h - 0.02, z), (s, 0.04, s), yaw, mat, inst)]
    bx, bz = _local_to_world(x, z, yaw, 0.0, -s / 2 + 0.02)
    parts.append(
        _box(f"{prefix}_back", (bx, h + back_h / 2, bz), (s, back_h, 0.04), yaw, mat, inst)
    )
    for k, (sx, sz) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
        lx, lz = _local_to_world(x, z, yaw, sx * (s / 2 - leg_r), sz * (s / 2 - leg_r))
        parts.append(
            _vertical_cylinder(f"{prefix}_leg{k}", (lx, 0.0, lz), leg_r, h - 0.04, leg_mat, inst)
        )
    return parts, 0.5 * np.hypot(s, s), h + back_h


def _make_cabinet(rng, x, z, yaw, inst, prefix):
    w, h, d = rng.uniform(0.4, 1.4), rng.uniform(0.4, 2.0), rng.uniform(0.3, 0.6)
    parts = [_box(f"{prefix}_body", (x, h / 2, z), (w, h, d), yaw, random_material(rng), inst)]
    return parts, 0.5 * np.hypot(w, d), h


def _make_barrel(rng, x, z, yaw, inst, prefix):
    r, h = rng.uniform(0.15, 0.4), rng.uniform(0.3, 1.0)
    mat = random_material(rng)
    parts = [
        _vertical_cylinder(f"{prefix}_side", (x, 0.0, z), r, h, mat, inst),
        _disk_up(f"{prefix}_cap", (x, h, z), r, mat, inst),
    ]
    return parts, r, h


def _make_ball(rng, x, z, yaw, inst, prefix):
    r = rng.uniform(0.1, 0.35)
    m = chain(translate((x, r, z)), scale(r))
    return [Primitive(f"{prefix}_ball", "sphere", m, random_material(rng), inst)], r, 2 * r


OBJECT_MAKERS = {
    "table": _make_table,
    "chair": _make_chair,
    "cabinet": _make_cabinet,
    "barrel": _make_barrel,
    "ball": _make_ball,
}


def _room(rng, width, height, depth) -> list[Primitive]:
    """Floor, ceiling and four walls as inward-facing rectangles, instances 0..5."""
    cx, cy, cz = width / 2, height / 2, depth / 2
    floor_mat = random_material(rng, allow_metal=False)
    wall_mat = random_material(rng, allow_metal=False)
    ceil_mat = Material("diffuse", _color(rng, 0.6, 0.9))
    faces = [
        # name, center, rotation (maps +z normal inward), half extents along local x, y
        ("floor", (cx, 0.0, cz), rotate("x", -90.0), (width / 2, depth / 2), floor_mat),
        ("ceiling", (cx, height, cz), rotate("x", 90.0), (width / 2, depth / 2), ceil_mat),
        ("wall_back", (cx, cy, depth), rotate("y", 180.0), (width / 2, height / 2), wall_mat),
        ("wall_front", (cx, cy, 0.0), np.eye(4), (width / 2, height / 2), wall_mat),
        ("wall_left", (0.0, cy, cz), rotate("y", 90.0), (depth / 2, height / 2), wall_mat),
        ("wall_right", (width, cy, cz), rotate("y", -90.0), (depth / 2, height / 2), wall_mat),
    ]
    return [
        Primitive(name, "rectangle", chain(translate(c), r, scale((hx, hy, 1.0))), mat, i)
        for i, (name, c, r, (hx, hy), mat) in enumerate(faces)
    ]


def _place_objects(rng, width, depth, num_objects, first_instance):
    """Rejection-samples non-overlapping footprints (bounding circles) on the floor."""
    primitives, footprints = [], []
    inst = first_instance
    for _ in range(num_objects):
        kind = str(rng.choice(list(OBJECT_MAKERS), p=[0.25, 0.2, 0.25, 0.15, 0.15]))
        for _attempt in range(30):
            x, z = rng.uniform(0.3, width - 0.3), rng.uniform(0.3, depth - 0.3)
            yaw = float(rng.uniform(0, 360))
            prefix = f"obj{inst:02d}_{kind}"
            parts, radius, height = OBJECT_MAKERS[kind](rng, x, z, yaw, inst, prefix)
            inside = radius < min(x, z, width - x, depth - z)
            free = all(
                np.hypot(x - fx, z - fz) > radius + fr + 0.05 for fx, fz, fr, _ in footprints
            )
            if inside and free:
                primitives += parts
                footprints.append((x, z, radius, height))
                inst += 1
                break
    return primitives, footprints


def _ceiling_lights(rng, width, height, depth, count, first_instance):
    lights = []
    for k in range(count):
        x, z = rng.uniform(0.25, 0.75) * width, rng.uniform(0.25, 0.75) * depth
        hx, hz = rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.6)
        power = rng.uniform(3.0, 8.0) * np.array(
            [1.0, rng.uniform(0.85, 1.0), rng.uniform(0.7, 1.0)]
        )
        m = chain(translate((x, height - 0.01, z)), rotate("x", 90.0), scale((hx, hz, 1.0)))
        lights.append(
            Primitive(
                f"light{k}",
                "rectangle",
                m,
                Material("diffuse", (0.8, 0.8, 0.8)),
                first_instance + k,
                emission=tuple(float(p) for p in power),
            )
        )
    return lights


def _random_camera(rng, width, height, depth, footprints) -> Camera:
    fov = float(rng.uniform(50.0, 75.0))
    for _ in range(100):
        origin = np.array(
            [
                rng.uniform(0.4, width - 0.4),
                rng.uniform(1.0, min(2.0, height - 0.3)),
                rng.uniform(0.4, depth - 0.4),
            ]
        )
        if any(np.hypot(origin[0] - fx, origin[2] - fz) < fr + 0.3 for fx, fz, fr, _ in footprints):
            continue
        if footprints:
            fx, fz, _, fh = footprints[rng.integers(len(footprints))]
            target = np.array([fx, fh * rng.uniform(0.3, 0.9), fz]) + rng.normal(0, 0.15, 3)
        else:
            target = np.array([width / 2, 0.8, depth / 2])
        if np.linalg.norm(target - origin) > 1.0:
            return Camera(tuple(origin.tolist()), tuple(target.tolist()), fov)
    # Fallback: the room centre looking at the far corner at table height (always valid).
    origin = np.array([width / 2, min(1.5, height - 0.3), depth / 2])
    return Camera(tuple(origin.tolist()), (width - 0.2, 0.7, depth - 0.2), fov)


def make_scene(scene_id: int, seed: int = 0, num_views: int = 1) -> SceneDescription:
    """Builds scene ``scene_id`` of the family defined by ``seed`` (deterministic)."""
    if isinstance(scene_id, bool) or not isinstance(scene_id, int | np.integer) or scene_id < 0:
        raise ValueError(f"scene_id must be a non-negative int. Received: scene_id={scene_id!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative int. Received: seed={seed!r}")
    if num_views < 1:
        raise ValueError(f"num_views must be >= 1. Received: num_views={num_views}")
    rng = np.random.default_rng([int(seed), int(scene_id)])
    width, depth = rng.uniform(3.0, 7.0, size=2)
    height = rng.uniform(2.4, 3.2)
    primitives = _room(rng, width, height, depth)
    objects, footprints = _place_objects(
        rng, width, depth, int(rng.integers(3, MAX_OBJECTS + 1)), len(primitives)
    )
    primitives += objects
    num_area = int(rng.integers(1, MAX_AREA_LIGHTS + 1))
    primitives += _ceiling_lights(
        rng, width, height, depth, num_area, 1 + max(p.instance for p in primitives)
    )
    lights = []
    if rng.random() < 0.5:  # at most MAX_POINT_LIGHTS (one)
        pos = (
            rng.uniform(0.5, width - 0.5),
            height - rng.uniform(0.3, 0.6),
            rng.uniform(0.5, depth - 0.5),
        )
        lights.append(
            Light(tuple(float(p) for p in pos), tuple([float(rng.uniform(3.0, 8.0))] * 3))
        )
    cameras = tuple(_random_camera(rng, width, height, depth, footprints) for _ in range(num_views))
    return SceneDescription(
        scene_id=int(scene_id),
        seed=int(seed),
        room_size=(float(width), float(height), float(depth)),
        primitives=tuple(primitives),
        lights=tuple(lights),
        cameras=cameras,
    )
