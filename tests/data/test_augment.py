import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf import geometry
from mtsyn_tf.data import augment

SEED = tf.constant([1, 2], tf.int64)


def _float_example(sample):
    example = {k: tf.constant(v) for k, v in sample.items()}
    return augment.to_float_image(example)


def test_flip_twice_is_identity_and_negates_normal_x(synthetic_sample):
    example = _float_example(synthetic_sample)
    once = augment.flip_left_right(example)
    np.testing.assert_array_equal(once["normals"][:, ::-1, 0], -synthetic_sample["normals"][..., 0])
    np.testing.assert_array_equal(
        once["normals"][:, ::-1, 1:], synthetic_sample["normals"][..., 1:]
    )
    np.testing.assert_array_equal(once["depth"][:, ::-1], synthetic_sample["depth"])
    twice = augment.flip_left_right(once)
    for key in example:
        np.testing.assert_array_equal(twice[key].numpy(), example[key].numpy(), err_msg=key)


def test_flipped_normals_match_geometry_of_flipped_depth(synthetic_sample):
    """Mirrored depth + mirrored intrinsics must give the mirrored normals (x negated)."""
    flipped = augment.flip_left_right(_float_example(synthetic_sample))
    expected = geometry.normals_from_depth(flipped["depth"].numpy(), flipped["intrinsics"].numpy())
    interior = np.linalg.norm(expected, axis=-1) > 0
    np.testing.assert_allclose(flipped["normals"].numpy()[interior], expected[interior], atol=1e-4)


def test_crop_of_known_ramp():
    height, width = 8, 12
    ramp = np.tile(np.arange(width, dtype=np.float32), (height, 1))
    example = {
        "image": tf.constant(np.repeat(ramp[..., None], 3, -1) / 255.0),
        "depth": tf.constant(ramp + 1.0),
        "contour": tf.constant((np.arange(width) == 6).astype(np.uint8)[None].repeat(height, 0)),
        "intrinsics": tf.constant([10.0, 10.0, 6.0, 4.0]),
    }
    # Same-size crop: an exact slice.
    out = augment.crop_and_resize(example, 1, 3, 4, 4)
    np.testing.assert_array_equal(out["depth"].numpy(), ramp[1:5, 3:7] + 1.0)
    np.testing.assert_allclose(out["image"].numpy()[..., 0], ramp[1:5, 3:7] / 255.0, atol=1e-6)
    np.testing.assert_allclose(out["intrinsics"].numpy(), [10.0, 10.0, 3.0, 3.0])
    # 2x downscale: nearest depth reads source column x0 + 2j + 1, intrinsics halve.
    out = augment.crop_and_resize(example, 0, 2, 8, 4)
    np.testing.assert_array_equal(out["depth"].numpy()[0], 2 + 2 * np.arange(4) + 1 + 1.0)
    np.testing.assert_allclose(out["intrinsics"].numpy(), [5.0, 5.0, 2.0, 2.0])
    # The 1-pixel contour at column 6 (crop column 4) survives in output column 2.
    np.testing.assert_array_equal(
        out["contour"].numpy(), np.eye(4, dtype=np.uint8)[2][None].repeat(4, 0)
    )


def test_random_resized_crop_consistent_and_seeded(synthetic_sample):
    example = _float_example(synthetic_sample)
    a = augment.random_resized_crop(example, 10, SEED, min_scale=0.5)
    b = augment.random_resized_crop(example, 10, SEED, min_scale=0.5)
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)
    assert a["image"].shape == (10, 10, 3) and a["depth"].shape == (10, 10)
    assert a["valid"].dtype == tf.bool
    # Labels stay consistent: nearest sampling keeps valid == depth > 0 and unit normals.
    np.testing.assert_array_equal(a["valid"].numpy(), a["depth"].numpy() > 0)
    norms = np.linalg.norm(a["normals"].numpy(), axis=-1)
    np.testing.assert_allclose(norms[a["valid"].numpy()], 1.0, atol=1e-5)
    c = augment.random_resized_crop(example, 10, tf.constant([3, 4], tf.int64), min_scale=0.5)
    assert not np.array_equal(a["image"].numpy(), c["image"].numpy())
    with pytest.raises(ValueError, match="min_scale"):
        augment.random_resized_crop(example, 10, SEED, min_scale=0.0)


def test_center_crop():
    image = np.arange(6 * 10 * 3, dtype=np.float32).reshape(6, 10, 3)
    out = augment.center_crop_and_resize({"image": tf.constant(image)}, 6)
    np.testing.assert_allclose(out["image"].numpy(), image[:, 2:8], rtol=1e-6)


def test_random_grayscale_channel(synthetic_sample):
    image = tf.constant(synthetic_sample["image"].astype(np.float32) / 255.0)
    seen = set()
    for i in range(12):
        gray = augment.random_grayscale_channel(image, tf.constant([i, 0])).numpy()
        np.testing.assert_array_equal(gray[..., 0], gray[..., 1])
        np.testing.assert_array_equal(gray[..., 0], gray[..., 2])
        matches = [c for c in range(3) if np.array_equal(gray[..., 0], image.numpy()[..., c])]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == {0, 1, 2}
    batch = tf.stack([image, image[::-1]])
    gray = augment.random_grayscale_channel(batch, SEED).numpy()
    assert gray.shape == batch.shape
    assert any(np.array_equal(gray[1, ..., 0], batch.numpy()[1, ..., c]) for c in range(3))


def test_random_grayscale_channel_copies_one_channel_exactly_per_image():
    # Values over 60 binades: the selection must be a copy, bit for bit, for each image.
    rng = np.random.default_rng(5)
    batch = rng.uniform(0.5, 1, (8, 9, 7, 3)) * 2.0 ** rng.integers(-30, 30, (8, 9, 7, 3))
    batch = batch.astype(np.float32)
    gray = augment.random_grayscale_channel(tf.constant(batch), SEED).numpy()
    chosen = []
    for out, image in zip(gray, batch):
        matches = [c for c in range(3) if np.array_equal(out[..., 0], image[..., c])]
        assert len(matches) == 1
        for c in range(3):
            np.testing.assert_array_equal(out[..., c], image[..., matches[0]])
        chosen.append(matches[0])
    assert len(set(chosen)) > 1  # drawn per image


def test_photometric_jitter_range_and_determinism(synthetic_sample):
    image = tf.constant(synthetic_sample["image"].astype(np.float32) / 255.0)
    a = augment.photometric_jitter(image, SEED).numpy()
    np.testing.assert_array_equal(a, augment.photometric_jitter(image, SEED).numpy())
    assert a.min() >= 0.0 and a.max() <= 1.0 and not np.array_equal(a, image.numpy())


def test_augment_inside_tf_data(synthetic_sample):
    example = {k: v for k, v in synthetic_sample.items()}
    ds = tf.data.Dataset.from_tensors(example).map(augment.to_float_image)
    ds = ds.map(
        lambda e: augment.random_flip_left_right(augment.random_resized_crop(e, 8, SEED), SEED)
    )
    out = next(iter(ds))
    eager = augment.random_flip_left_right(
        augment.random_resized_crop(_float_example(synthetic_sample), 8, SEED), SEED
    )
    for key in ("image", "depth", "normals", "contour", "valid", "intrinsics"):
        np.testing.assert_array_equal(out[key].numpy(), eager[key].numpy(), err_msg=key)


def _reference_crop(example, y0, x0, side, size):
    """The documented transform, key by key with tf.image.resize (the slow, plain way)."""
    out = {}
    for key, value in example.items():
        crop = value[y0 : y0 + side, x0 : x0 + side]
        hwc = crop[..., None] if crop.shape.rank == 2 else crop
        if key == "image":
            hwc = tf.image.convert_image_dtype(hwc, tf.float32)
            out[key] = tf.image.resize(hwc, [size, size], "bilinear", antialias=True)
            continue
        if key == "contour" and side > size:
            area = tf.image.resize(tf.cast(hwc, tf.float32), [size, size], "area") > 0
            resized = tf.cast(area, value.dtype)
        else:
            work = tf.cast(hwc, tf.uint8) if value.dtype == tf.bool else hwc
            resized = tf.cast(tf.image.resize(work, [size, size], "nearest"), value.dtype)
        out[key] = resized[..., 0] if value.shape.rank == 2 else resized
    return out


def _upscale_rounding(side: int) -> float:
    """How far ResizeBilinear and the antialiased kernel may differ on an upscale of [0, 1] data.

    Same bilinear weights, sample positions rounded differently: each computes a position
    of magnitude <= side in float32 with ~3 roundings (<= 3·side·2**-24 each, so 6·side
    between them), which moves a weight by as much and the output by that times
    |p1 - p0| <= 1, plus ~3 roundings of the two-tap sum; twice over (rows, then columns).
    """
    return 2 * (6 * side + 3) * 2.0**-24


def test_crop_and_resize_equals_per_key_resizes_in_graphs_of_unknown_size(make_sample):
    """The one-gather nearest path and the uint8 image path are the plain transform.

    Inside a graph with unknown sizes (as in tf.data), for up- and downscales; exactly,
    except the photo on an upscale (ResizeBilinear instead of the antialiasing kernel,
    whose weights are the same there): within the rounding of the sample positions.
    """
    keys = ("image", "depth", "normals", "valid", "contour", "instance")
    spec = {
        k: tf.TensorSpec([None, None] + ([3] if k in ("image", "normals") else []), dtype)
        for k, dtype in zip(keys, (tf.uint8, tf.float32, tf.float32, tf.bool, tf.uint8, tf.int32))
    }
    signature = [spec, *(tf.TensorSpec([], tf.int32) for _ in range(3))]

    @tf.function(input_signature=signature)
    def fast(example, y0, x0, side):
        return augment.crop_and_resize(example, y0, x0, side, 23)

    @tf.function(input_signature=signature)
    def plain(example, y0, x0, side):
        return _reference_crop(example, y0, x0, side, 23)

    rng = np.random.default_rng(0)
    for height, width in [(40, 61), (23, 23), (97, 50), (11, 17)]:
        sample = make_sample(height, width, seed=height)
        example = {k: tf.constant(sample[k]) for k in keys}
        for _ in range(6):
            side = int(rng.integers(1, min(height, width) + 1))
            y0, x0 = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
            got, want = fast(example, y0, x0, side), plain(example, y0, x0, side)
            for key in keys:
                assert got[key].dtype == want[key].dtype, key
                message = f"{key} side={side}"
                if key == "image" and side <= 23:
                    atol = _upscale_rounding(side)
                    np.testing.assert_allclose(
                        got[key], want[key], rtol=0, atol=atol, err_msg=message
                    )
                else:
                    np.testing.assert_array_equal(got[key], want[key], err_msg=message)


@pytest.mark.parametrize("side", [1, 2, 57, 113, 200, 226, 227, 228, 300, 453])
def test_photo_resize_is_the_antialiased_bilinear_one(side):
    """At the training size, S=227: the documented antialiased bilinear resize.

    Downscales run that kernel itself (bit for bit); upscales run ResizeBilinear (the same
    weights: the antialiased kernel is 1 source pixel wide there), within the rounding of
    the sample positions, and never a coarser kernel (nearest would be ~0.1 off).
    """
    rng = np.random.default_rng(side)
    photo = tf.constant(rng.integers(0, 256, (side + 5, side + 3, 3), dtype=np.uint8))
    got = augment.crop_and_resize({"image": photo}, 2, 1, side, 227)["image"]
    crop = tf.image.convert_image_dtype(photo[2 : 2 + side, 1 : 1 + side], tf.float32)
    want = tf.image.resize(crop, [227, 227], "bilinear", antialias=True)
    if side > 227:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=0, atol=_upscale_rounding(side))


def test_nearest_indices_are_the_resize_kernels():
    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
    def indices(n):
        return augment.nearest_indices(n, 227)

    for n in list(range(1, 60)) + [113, 170, 226, 227, 228, 300, 453, 640]:
        ramp = tf.reshape(tf.range(n, dtype=tf.float32), [n, 1, 1])
        want = tf.image.resize(ramp, [227, 1], "nearest")[:, 0, 0].numpy().astype(np.int32)
        np.testing.assert_array_equal(indices(tf.constant(n)), want, err_msg=str(n))


def test_mirrored_crop_is_the_crop_then_flip_bit_for_bit(make_sample):
    """``crop_and_resize(mirror=...)`` (reversed gathers) equals the crop, then the flip.

    Every key (the photo, per-key nearest maps, the fused labels, intrinsics), both flip
    branches, up- and downscales (the contour's area path), in graphs of unknown size:
    exactly, since mirroring only reorders copies and the sign change is exact.
    """
    keys = ("image", "depth", "normals", "valid", "contour", "instance", "intrinsics")
    dtypes = (tf.uint8, tf.float32, tf.float32, tf.bool, tf.uint8, tf.int32, tf.float32)
    shapes = {"image": [None, None, 3], "normals": [None, None, 3], "intrinsics": [4]}
    spec = {k: tf.TensorSpec(shapes.get(k, [None, None]), d) for k, d in zip(keys, dtypes)}
    fused_spec = {
        "image": spec["image"],
        "labels": tf.TensorSpec([None, None, 6], tf.float32),
        "intrinsics": spec["intrinsics"],
    }
    window = [*(tf.TensorSpec([], tf.int32) for _ in range(3)), tf.TensorSpec([], tf.bool)]

    def mirrored(example, y0, x0, side, mirror):
        return augment.crop_and_resize(example, y0, x0, side, 23, mirror=mirror)

    def flipped(example, y0, x0, side, mirror):
        out = augment.crop_and_resize(example, y0, x0, side, 23)
        return tf.cond(mirror, lambda: augment.flip_left_right(out), lambda: out)

    functions = {
        name: (
            tf.function(fn, input_signature=[spec, *window]),
            tf.function(fn, input_signature=[fused_spec, *window]),
        )
        for name, fn in (("mirrored", mirrored), ("flipped", flipped))
    }
    rng = np.random.default_rng(1)
    branches = set()
    for height, width in [(40, 61), (23, 23), (97, 50), (11, 17)]:
        sample = make_sample(height, width, seed=height)
        example = {k: tf.constant(sample[k]) for k in keys}
        fused = augment.fuse_labels(example)
        fused = {k: fused[k] for k in fused_spec}
        for trial in range(6):
            side = int(rng.integers(1, min(height, width) + 1))
            y0, x0 = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
            mirror = tf.constant(trial % 2 == 0)
            args = (y0, x0, side, mirror)
            for i, inputs in enumerate((example, fused)):
                got = functions["mirrored"][i](inputs, *args)
                want = functions["flipped"][i](inputs, *args)
                assert set(got) == set(want)
                for key in got:
                    message = f"{key} side={side} mirror={bool(mirror)}"
                    assert got[key].dtype == want[key].dtype, message
                    np.testing.assert_array_equal(got[key], want[key], err_msg=message)
            branches.add((side > 23, bool(mirror)))
    assert branches == {(True, True), (True, False), (False, True), (False, False)}
