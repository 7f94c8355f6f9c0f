import cv2
import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf import visualize


def _magma(level: int) -> np.ndarray:
    """OpenCV's MAGMA colour for one uint8 level, as RGB."""
    return cv2.applyColorMap(np.array([[level]], np.uint8), cv2.COLORMAP_MAGMA)[0, 0, ::-1]


def test_normals_closed_form():
    normals = np.zeros((2, 2, 3), np.float32)
    normals[0, 0] = (0, 0, -1)
    normals[0, 1] = (1, 0, 0)
    normals[1, 0] = (0, 1, 0)
    colour = visualize.colorize_normals(normals)
    np.testing.assert_array_equal(colour[0, 0], [127, 127, 0])
    np.testing.assert_array_equal(colour[0, 1], [255, 127, 127])
    np.testing.assert_array_equal(colour[1, 0], [127, 255, 127])
    np.testing.assert_array_equal(colour[1, 1], [0, 0, 0])  # zero normal = unknown
    np.testing.assert_array_equal(visualize.colorize_normals(tf.constant(normals)), colour)
    batch = np.stack([normals, -normals])
    np.testing.assert_array_equal(visualize.colorize_normals(batch)[0], colour)


def test_depth_near_bright_invalid_black():
    depth = np.array([[1.0, 2.0], [0.0, np.nan]], np.float32)
    colour = visualize.colorize_depth(depth)
    assert colour[0, 0].sum() > colour[0, 1].sum()  # near is brighter
    np.testing.assert_array_equal(colour[1], 0)
    np.testing.assert_array_equal(colour[0, 0], _magma(255))
    np.testing.assert_array_equal(colour[0, 1], _magma(0))


def test_depth_range_maps_inverse_depth_linearly():
    # near=1 m, far=4 m: inverse depth 1 → top, 0.25 → bottom, 0.5 → (0.5-0.25)/0.75 of the way.
    depth = np.array([[1.0, 4.0, 2.0, 0.5, 8.0]])
    colour = visualize.colorize_depth(depth[..., None], depth_range=(1.0, 4.0))
    level = int((0.25 / 0.75) * 255)
    expected = [_magma(255), _magma(0), _magma(level), _magma(255), _magma(0)]
    np.testing.assert_array_equal(colour[0], expected)  # outside the range clips


def test_depth_valid_mask_and_tensor_input():
    depth = np.full((3, 3, 1), 2.0, np.float32)
    depth[0, 0, 0] = 1.0
    valid = np.ones((3, 3, 1), np.float32)
    valid[1, 1, 0] = 0.0
    colour = visualize.colorize_depth(tf.constant(depth), valid=tf.constant(valid))
    np.testing.assert_array_equal(colour[1, 1], 0)
    np.testing.assert_array_equal(colour[0, 0], _magma(255))
    np.testing.assert_array_equal(colour[2, 2], _magma(0))
    np.testing.assert_array_equal(visualize.colorize_depth(np.zeros((2, 2))), 0)  # none valid


def test_inverse_depth_range_is_the_default_scale():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 10.0, (16, 16))
    near, far = visualize.inverse_depth_range(depth)
    inverse = 1.0 / depth.ravel()
    np.testing.assert_allclose([1.0 / far, 1.0 / near], np.percentile(inverse, [2, 98]), rtol=1e-12)
    np.testing.assert_array_equal(
        visualize.colorize_depth(depth), visualize.colorize_depth(depth, depth_range=(near, far))
    )
    assert visualize.inverse_depth_range(np.full((2, 2), np.nan)) is None


def test_contour_white_on_black():
    contour = np.array([[0.0, 1.0, 0.5, 2.0, -1.0, np.nan]])
    colour = visualize.colorize_contour(contour[..., None])
    np.testing.assert_array_equal(colour[0, :, 0], [0, 255, 128, 255, 0, 0])
    assert np.all(colour == colour[..., :1])  # grey


def test_to_uint8_rgb():
    np.testing.assert_array_equal(
        visualize.to_uint8_rgb(np.array([[0.0, 0.5, 1.2]])), [[[0] * 3, [128] * 3, [255] * 3]]
    )
    image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    np.testing.assert_array_equal(visualize.to_uint8_rgb(tf.constant(image)), image)
    assert visualize.to_uint8_rgb(np.zeros((4, 5, 1), np.float32)).shape == (4, 5, 3)


def test_bad_shapes_raise_value_errors():
    with pytest.raises(ValueError, match=r"depth of shape \[H, W\]"):
        visualize.colorize_depth(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="valid must match"):
        visualize.colorize_depth(np.ones((2, 2)), valid=np.ones((3, 3)))
    with pytest.raises(ValueError, match="depth_range"):
        visualize.colorize_depth(np.ones((2, 2)), depth_range=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"normals of shape \[\.\.\., 3\]"):
        visualize.colorize_normals(np.ones((2, 2)))
    with pytest.raises(ValueError, match="image"):
        visualize.to_uint8_rgb(np.ones((2, 2, 4)))
