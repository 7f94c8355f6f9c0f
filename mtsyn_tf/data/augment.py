"""Augmentations over one decoded example (a dict of tensors), separate from decoding.

Every random function takes an explicit ``seed`` (int tensor of shape [2]) and uses
stateless TF ops, so the same seed gives the same result eagerly and inside
``tf.data`` (this is what makes ``make_training_dataset(deterministic=True)`` exact).

Geometry is kept consistent across keys: one crop window is applied to every spatial
map, interpolation is chosen per key (bilinear for the photo; nearest for depth,
normals, validity and ids so no value is invented between a foreground and background
surface; contours keep every edge when downscaled, see ``_resize_contour``), and
``intrinsics`` are updated so depth-from-geometry stays correct after a crop or flip.

Images are float32 in [0, 1] here (``to_float_image`` converts decoded uint8; the crops
also take uint8 and convert only the crop).

The training pipeline carries the dense labels fused into one float32 map, ``labels``
(``fuse_labels``; channels in ``LABEL_CHANNELS`` order): nearest resampling is a gather
whose cost is per pixel, not per byte, so one gather of 6 channels costs what one of a
single map does, and float32 is both the model's dtype and exact for every label value.
The crops and flips treat ``labels`` as its parts: nearest, contour channel kept on
downscales, normals' x negated on a flip.
"""

from __future__ import annotations

import tensorflow as tf

# Spatial keys and how each is resampled. Absent keys are skipped (real photos only
# carry "image").
_BILINEAR = ("image",)
_NEAREST = ("depth", "normals", "valid", "instance")
_SPATIAL = _BILINEAR + _NEAREST + ("contour", "labels")
# The fused dense labels (key "labels"): name and channel count, in channel order.
LABEL_CHANNELS = (("depth", 1), ("normals", 3), ("contour", 1), ("valid", 1))
_CONTOUR_CHANNEL = 4
# Multiplies the labels on a horizontal flip: normals' x changes sign, nothing else.
_LABEL_FLIP_SIGNS = (1.0, -1.0, 1.0, 1.0, 1.0, 1.0)


def _split(seed, num: int):
    return tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=num)


def to_float_image(example: dict) -> dict:
    """Converts ``image`` uint8 [0, 255] to float32 [0, 1]; other keys unchanged."""
    out = dict(example)
    out["image"] = tf.image.convert_image_dtype(example["image"], tf.float32)
    return out


def fuse_labels(example: dict) -> dict:
    """Replaces depth/normals/contour/valid by ``labels``: float32 [H, W, 6] (exact)."""
    out = {k: v for k, v in example.items() if k not in dict(LABEL_CHANNELS)}
    parts = [tf.cast(_as_hwc(example[name]), tf.float32) for name, _ in LABEL_CHANNELS]
    out["labels"] = tf.concat(parts, axis=-1)
    return out


def split_labels(labels) -> dict:
    """``fuse_labels``' parts back, as float32 [..., C] maps (the model's target layout)."""
    widths = [channels for _, channels in LABEL_CHANNELS]
    parts = tf.split(labels, widths, axis=-1)
    return {name: part for (name, _), part in zip(LABEL_CHANNELS, parts)}


def _as_hwc(value):
    return value[..., None] if value.shape.rank == 2 else value


def _restore(value, like):
    return value[..., 0] if like.shape.rank == 2 else value


def nearest_indices(in_size, out_size: int):
    """Source index of each output pixel of a nearest-neighbour resize, ``in_size`` -> ``out_size``.

    Gathering rows and columns with these indices gives exactly the pixels of
    ``tf.image.resize(method="nearest")`` at a fraction of its CPU time (a copy, no
    per-pixel arithmetic; it runs on the cores the train step needs, issue 13). The
    indices come from the resize kernel itself, applied to ``[0, 1, ..., in_size - 1]``,
    rather than from its float formula re-typed here: graph rewrites (division by a
    reciprocal) would move a few indices by one.
    """
    positions = tf.cast(tf.range(in_size), tf.float32)[:, None, None]  # exact below 2**24
    picked = tf.image.resize(positions, [out_size, 1], method="nearest")
    return tf.cast(picked[:, 0, 0], tf.int32)


def _gather_nearest(value, rows, cols):
    """``value[rows][:, cols]``: crop and nearest resize in one gather per axis."""
    return tf.gather(tf.gather(value, rows, axis=0), cols, axis=1)


def _resize_photo(crop, side, size: int):
    """Bilinear resize of a float32 crop to S×S, antialiased when downscaling.

    Antialiasing widens the triangle kernel to max(1, side / S) source pixels, so on an
    upscale (or side == S) its weights are plain bilinear ones (half-pixel centres, edge
    pixels repeated) and ``ResizeBilinear`` computes the same image at ~1/4 of the CPU
    time of the generic antialiasing kernel. The two round the sample positions
    differently: on [0, 1] images they differ by at most 2·(6·side + 3)·2⁻²⁴ (< 1.7e-4;
    measured ≤ 2.7e-5 at S = 227, 0.007 of a grey level). Training batches therefore
    differ from those of the antialiasing kernel by that rounding, nothing else.
    """

    def antialiased():
        return tf.image.resize(crop, [size, size], method="bilinear", antialias=True)

    def bilinear():
        return tf.image.resize(crop, [size, size], method="bilinear", antialias=False)

    return tf.cond(tf.convert_to_tensor(side) > size, antialiased, bilinear)


def _area_edges(contour_crop, size: int):
    """ "Any edge in the footprint": area-resize a [side, side, 1] crop to S×S, then ``> 0``."""
    crop = tf.cast(contour_crop, tf.float32)
    return tf.image.resize(crop, [size, size], method="area") > 0


def _resize_contour(
    contour, nearest, y0, x0, side, size: int, channel: int | None = None, mirror=None
):
    """Nearest when upscaling; "any edge in the footprint" when downscaling.

    Nearest sampling alone would drop most 1-pixel edges on a 3x downscale (it reads
    one source pixel in three); area-averaging then ``> 0`` keeps each edge, and since
    a downscale footprint is wider than one source pixel the edge stays ~1 pixel thin.
    ``nearest`` is the crop's nearest resize (already computed); the area resize only
    runs when downscaling. With ``channel``, ``contour`` is a map of several channels
    (fused ``labels``) and only that channel is the contour. ``mirror``: ``nearest`` is
    mirrored left-right (``crop_and_resize``), so the area resize's edges are too.
    """

    def edges_of(crop):
        edges = _area_edges(crop, size)
        return edges if mirror is None else _mirror_if(mirror, edges, axis=1)

    if channel is not None:
        c = channel

        def area():
            edges = edges_of(contour[y0 : y0 + side, x0 : x0 + side, c : c + 1])
            return tf.concat(
                [nearest[..., :c], tf.cast(edges, nearest.dtype), nearest[..., c + 1 :]], -1
            )

    else:

        def area():
            edges = edges_of(_as_hwc(contour[y0 : y0 + side, x0 : x0 + side]))
            return _restore(tf.cast(edges, contour.dtype), contour)

    downscale = tf.convert_to_tensor(side) > size
    return tf.cond(downscale, area, lambda: nearest)


def _fusable(value) -> bool:
    """A map whose values float32 holds exactly (so it can share one gather)."""
    rank = value.shape.rank
    channels_known = rank == 2 or (rank == 3 and value.shape[-1] is not None)
    return value.dtype in (tf.float32, tf.bool, tf.uint8) and channels_known


def _nearest_together(maps: dict, rows, cols) -> dict:
    """Nearest-resizes several maps with one gather per axis, each back in its dtype.

    Exact: float32 holds every float32, bool and uint8 value, and nearest sampling only
    copies. One gather of the stacked channels costs about what one map's does. A single
    map is gathered as it is (stacking it would only copy it).
    """
    if len(maps) == 1:
        ((key, value),) = maps.items()
        return {key: _gather_nearest(value, rows, cols)}
    parts = [tf.cast(_as_hwc(v), tf.float32) for v in maps.values()]
    merged = _gather_nearest(tf.concat(parts, axis=-1), rows, cols)
    widths = [p.shape[-1] for p in parts]
    out = {}
    for (key, value), part in zip(maps.items(), tf.split(merged, widths, axis=-1)):
        out[key] = _restore(tf.cast(part, value.dtype), value)
    return out


def crop_and_resize(example: dict, y0, x0, side, size: int, first_row=0, mirror=None) -> dict:
    """Crops the square ``[y0:y0+side, x0:x0+side]`` of every spatial key, resizes to S×S.

    A uint8 ``image`` is converted to float32 [0, 1] after cropping (the same numbers
    as converting first, for a fraction of the pixels). ``first_row``: where the record's
    row 0 is in the maps (records stacked row after row, ``record_cache.RecordView``);
    ``y0`` and the intrinsics stay in the record's own coordinates.

    ``mirror`` (bool scalar, optional): also flip left-right, exactly
    ``flip_left_right`` of the result. The nearest-resampled maps are mirrored by
    gathering their columns in reverse order (no extra pass over them; the reverse and
    the sign pass of a separate flip cost more than the crop's gather, issue 13).
    """
    out = dict(example)
    top = first_row + y0
    # The nearest resize of the crop as row/column indices into the uncropped maps.
    offsets = nearest_indices(side, size)
    col_offsets = offsets if mirror is None else _mirror_if(mirror, offsets, axis=0)
    rows, cols = top + offsets, x0 + col_offsets
    for key in _BILINEAR:
        if key in example:
            crop = example[key][top : top + side, x0 : x0 + side]
            out[key] = _resize_photo(tf.image.convert_image_dtype(crop, tf.float32), side, size)
            out[key] = out[key] if mirror is None else _mirror_if(mirror, out[key], axis=1)
    nearest = [k for k in _NEAREST + ("contour", "labels") if k in example]
    fused = {k: example[k] for k in nearest if _fusable(example[k])}
    out.update(_nearest_together(fused, rows, cols) if fused else {})
    for key in nearest:
        if key not in fused:
            out[key] = _gather_nearest(example[key], rows, cols)
    if "contour" in example:
        out["contour"] = _resize_contour(
            example["contour"], out["contour"], top, x0, side, size, mirror=mirror
        )
    if "labels" in example:
        out["labels"] = _resize_contour(
            example["labels"], out["labels"], top, x0, side, size, _CONTOUR_CHANNEL, mirror
        )
    if "intrinsics" in example:
        scale = tf.cast(size, tf.float32) / tf.cast(side, tf.float32)
        fx, fy, cx, cy = tf.unstack(example["intrinsics"])
        x0f, y0f = tf.cast(x0, tf.float32), tf.cast(y0, tf.float32)
        out["intrinsics"] = tf.stack(
            [fx * scale, fy * scale, (cx - x0f) * scale, (cy - y0f) * scale]
        )
    if mirror is not None:
        out = _mirror_values(out, mirror, size)
    return out


def _mirror_if(mirror, value, axis: int):
    return tf.cond(mirror, lambda: tf.reverse(value, axis=[axis]), lambda: value)


def _negate_x_if(mirror, value, signs):
    """``value * signs`` (per channel) when ``mirror``, as one row-broadcast multiply.

    The signs tiled along a whole image row make the broadcast over rows only, which
    runs at ~2x the speed of a per-channel broadcast; the products are the same.
    """

    def negated():
        shape = tf.shape(value)
        flat = tf.reshape(value, [shape[0], -1])
        row = tf.tile(tf.constant(signs, value.dtype), [shape[1]])
        return tf.reshape(flat * row[None], shape)

    return tf.cond(mirror, negated, lambda: value)


def _mirror_values(example: dict, mirror, size: int) -> dict:
    """What a left-right flip changes besides pixel positions: normals' x, the principal point."""
    out = dict(example)
    if "normals" in example:
        out["normals"] = _negate_x_if(mirror, example["normals"], (-1.0, 1.0, 1.0))
    if "labels" in example:
        out["labels"] = _negate_x_if(mirror, example["labels"], _LABEL_FLIP_SIGNS)
    if "intrinsics" in example:
        fx, fy, cx, cy = tf.unstack(example["intrinsics"])
        out["intrinsics"] = tf.where(
            mirror, tf.stack([fx, fy, float(size) - cx, cy]), example["intrinsics"]
        )
    return out


def random_resized_crop(
    example: dict, size: int, seed, min_scale: float = 0.5, max_scale: float = 1.0
) -> dict:
    """Multi-scale crop: a random square of side ``s * min(H, W)``, s ~ U[min_scale, max_scale].

    Square crops keep the aspect ratio (and so the geometry) undistorted.
    """
    shape = tf.shape(example["image"])
    window = random_crop_window(shape[0], shape[1], seed, min_scale, max_scale)
    return crop_and_resize(example, *window, size)


def random_crop_window(height, width, seed, min_scale: float = 0.5, max_scale: float = 1.0):
    """``random_resized_crop``'s square ``(y0, x0, side)`` in an ``height``×``width`` record."""
    if not 0.0 < min_scale <= max_scale <= 1.0:
        raise ValueError(
            f"Need 0 < min_scale <= max_scale <= 1. Received: min_scale={min_scale}, "
            f"max_scale={max_scale}"
        )
    seeds = _split(seed, 3)
    short = tf.cast(tf.minimum(height, width), tf.float32)
    scale = tf.random.stateless_uniform([], seeds[0], min_scale, max_scale)
    side = tf.maximum(1, tf.cast(tf.round(scale * short), tf.int32))
    y0 = tf.random.stateless_uniform([], seeds[1], 0, height - side + 1, dtype=tf.int32)
    x0 = tf.random.stateless_uniform([], seeds[2], 0, width - side + 1, dtype=tf.int32)
    return y0, x0, side


def center_crop_and_resize(example: dict, size: int) -> dict:
    """Evaluation transform: the centred square of side min(H, W), resized to S×S."""
    shape = tf.shape(example["image"])
    side = tf.minimum(shape[0], shape[1])
    return crop_and_resize(example, (shape[0] - side) // 2, (shape[1] - side) // 2, side, size)


def flip_left_right(example: dict) -> dict:
    """Mirrors every spatial key; negates normals' x and mirrors the principal point."""
    out = dict(example)
    for key in _SPATIAL:
        if key in example:
            out[key] = tf.reverse(example[key], axis=[1])
    if "normals" in example:
        out["normals"] = out["normals"] * tf.constant([-1.0, 1.0, 1.0], out["normals"].dtype)
    if "labels" in example:
        out["labels"] = out["labels"] * tf.constant(_LABEL_FLIP_SIGNS, out["labels"].dtype)
    if "intrinsics" in example:
        width = tf.cast(tf.shape(example["image"])[1], tf.float32)
        fx, fy, cx, cy = tf.unstack(example["intrinsics"])
        out["intrinsics"] = tf.stack([fx, fy, width - cx, cy])
    return out


def random_flip_left_right(example: dict, seed, probability: float = 0.5) -> dict:
    flip = random_flip_decision(seed, probability)
    return tf.cond(flip, lambda: flip_left_right(example), lambda: dict(example))


def random_flip_decision(seed, probability: float = 0.5):
    """``random_flip_left_right``'s coin: True where that seed flips (``crop_and_resize(mirror=)``)."""
    return tf.random.stateless_uniform([], tf.cast(seed, tf.int64)) < probability


def photometric_jitter(
    image,
    seed,
    brightness: float = 0.15,
    contrast: tuple[float, float] = (0.75, 1.25),
    saturation: tuple[float, float] = (0.75, 1.25),
    hue: float = 0.04,
):
    """Colour jitter for real photos (float32 [0, 1] image in, clipped to [0, 1] out)."""
    seeds = _split(seed, 4)
    image = tf.image.stateless_random_brightness(image, brightness, seeds[0])
    image = tf.image.stateless_random_contrast(image, *contrast, seed=seeds[1])
    image = tf.image.stateless_random_saturation(image, *saturation, seed=seeds[2])
    image = tf.image.stateless_random_hue(image, hue, seed=seeds[3])
    return tf.clip_by_value(image, 0.0, 1.0)


def random_grayscale_channel(image, seed):
    """The paper's input: one randomly chosen RGB channel repeated 3 times.

    Works on [H, W, 3] or batched [..., H, W, 3] images (one channel drawn per image).
    The copy is one matmul per image, pixels [H·W, 3] × S [3, 3] with S's row for the
    chosen channel all ones and the others zero: each output is x·1 + 0 + 0, so for finite
    inputs the chosen value comes out exactly (a non-finite value in any channel spreads
    to all three). A gather on the 3-wide innermost axis plus a repeat did the same at
    3.5× the cost with oneDNN (it ran on every training batch of both domains).
    """
    if image.shape[-1] != 3:
        raise ValueError(f"image must have 3 channels. Received shape: {image.shape}")
    batch_shape = tf.shape(image)[:-3]
    channel = tf.random.stateless_uniform(
        batch_shape, tf.cast(seed, tf.int64), 0, 3, dtype=tf.int32
    )
    chosen_row = tf.one_hot(channel, 3, dtype=image.dtype)[..., :, None]  # [..., 3, 1]
    selector = tf.repeat(chosen_row, 3, axis=-1)  # [..., 3, 3]
    pixels = tf.reshape(image, tf.concat([batch_shape, [-1, 3]], axis=0))
    return tf.reshape(tf.matmul(pixels, selector), tf.shape(image))


def zip_with_seeds(dataset: tf.data.Dataset, seed: int | None) -> tf.data.Dataset:
    """Pairs each element with its own stateless seed (int64 [2]).

    With an integer ``seed`` the seed stream, and therefore every augmentation, repeats
    exactly from run to run; with ``None`` it is drawn fresh.
    """
    seeds = tf.data.Dataset.random(seed=seed).batch(2, drop_remainder=True)
    return tf.data.Dataset.zip((dataset, seeds))
