"""SPEC §3 losses against independent numpy references and hand-computable cases."""

import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf import losses

RNG = np.random.default_rng(1234)


# --------------------------------------------------------------------- references
def softplus(x):
    return np.logaddexp(0.0, x)


def bce_np(logits, label):
    """Elementwise BCE from logits: −y·log σ(l) − (1−y)·log(1−σ(l)), in float64."""
    logits = np.asarray(logits, np.float64)
    return label * softplus(-logits) + (1.0 - label) * softplus(logits)


def contour_np(logits, targets, normalization="edges"):
    """The three scales of losses.contour.NORMALIZATIONS, written out per image."""
    out = []
    for lg, t in zip(logits.astype(np.float64), targets.astype(np.float64)):
        bce = bce_np(lg, t)
        n_edges, n_pixels = t.sum(), t.size
        if normalization == "reference":  # every pixel weighted #non-edge / #edge
            out.append((n_pixels - n_edges) / n_edges * bce.mean() if n_edges else 0.0)
            continue
        beta = 1.0 - n_edges / n_pixels
        weighted_sum = np.sum(np.where(t > 0, beta, 1.0 - beta) * bce)
        out.append(weighted_sum / (n_pixels if normalization == "pixels" else max(n_edges, 1)))
    return np.array(out)


def depth_np(pred_log, gt, valid):
    out = []
    for p, g, v in zip(pred_log, gt, valid):
        m = (v > 0) & (g > 0)
        if not m.any():
            out.append(0.0)
            continue
        d = p[m].astype(np.float64) - np.log(g[m].astype(np.float64))
        out.append(np.mean(d**2) - 0.5 * np.mean(d) ** 2)
    return np.array(out)


def normals_np(pred, gt, valid):
    out = []
    for p, g, v in zip(pred.astype(np.float64), gt.astype(np.float64), valid):
        m = v[..., 0] > 0
        if not m.any():
            out.append(0.0)
            continue
        pu = p[m] / np.linalg.norm(p[m], axis=-1, keepdims=True)
        gu = g[m] / np.linalg.norm(g[m], axis=-1, keepdims=True)
        out.append(-np.mean(np.sum(pu * gu, axis=-1)))
    return np.array(out)


def f32(x):
    return np.asarray(x, np.float32)


# --------------------------------------------------------------------- contour
@pytest.mark.parametrize("normalization", losses.contour.NORMALIZATIONS)
def test_contour_matches_numpy_on_random_inputs(normalization):
    logits = f32(RNG.normal(scale=3.0, size=(3, 9, 11, 1)))
    targets = f32(RNG.random((3, 9, 11, 1)) < np.array([0.1, 0.4, 0.7])[:, None, None, None])
    got = losses.contour_loss_per_example(logits, targets, normalization=normalization).numpy()
    np.testing.assert_allclose(got, contour_np(logits, targets, normalization), rtol=1e-5)


def test_contour_hand_computed_beta_per_image():
    # 2×2 images at logit 0 (BCE = log 2 everywhere). Image 0: 1 edge → β = 3/4, weighted
    # sum 3/4 (edge) + 3 × 1/4 = 1.5 · log 2, over 1 edge pixel. Image 1: 2 edges → β = 1/2,
    # weighted sum 4 × 1/2 · log 2 over 2 edge pixels = log 2.
    targets = f32([[[1, 0], [0, 0]], [[1, 1], [0, 0]]])[..., None]
    got = losses.contour_loss_per_example(np.zeros_like(targets), targets).numpy()
    np.testing.assert_allclose(got, [1.5 * np.log(2), np.log(2)], rtol=1e-6)
    # The old per-pixel mean is 1/p times smaller (p = edge share): the default is not it.
    pixels = losses.contour_loss_per_example(np.zeros_like(targets), targets, "pixels").numpy()
    np.testing.assert_allclose(pixels, [1.5 / 4 * np.log(2), 0.5 * np.log(2)], rtol=1e-6)


def test_contour_default_scale_does_not_shrink_with_the_edge_share():
    # At logit 0 the default loss is (1 − p)·2·log 2 whatever the edge share p: the paper's
    # class balance kept, and (unlike the per-pixel mean ≈ 2p(1 − p)·log 2) no factor p that
    # would starve B of contour gradients on images with 1-pixel contours (p ≈ 3 %).
    for n_edges in (3, 30, 300):
        targets = np.zeros((1, 100, 100, 1), np.float32)
        targets.reshape(-1)[:n_edges] = 1.0
        p = n_edges / targets.size
        got = losses.contour_loss_per_example(np.zeros_like(targets), targets).numpy()
        # float32 sum of 10⁴ terms: relative error ≤ 10⁴ · 2⁻²⁴ ≈ 6e-4 (sequential worst
        # case); the per-pixel mean differs by a factor 1/p ≥ 33.
        np.testing.assert_allclose(got, [(1 - p) * 2 * np.log(2)], rtol=1e-3)


def test_contour_rejects_unknown_normalization():
    with pytest.raises(ValueError, match="normalization='sum'"):
        losses.contour_loss_per_example(np.zeros((1, 2, 2, 1)), np.zeros((1, 2, 2, 1)), "sum")


@pytest.mark.parametrize("normalization", losses.contour.NORMALIZATIONS)
def test_contour_edge_free_image_is_zero_with_finite_gradient(normalization):
    targets = np.zeros((2, 8, 8, 1), np.float32)
    targets[1, 3, :, 0] = 1.0
    logits = tf.Variable(RNG.normal(size=(2, 8, 8, 1)).astype(np.float32))
    with tf.GradientTape() as tape:
        per_image = losses.contour_loss_per_example(logits, targets, normalization)
        total = tf.reduce_sum(per_image)
    grad = tape.gradient(total, logits).numpy()
    assert per_image.numpy()[0] == 0.0
    assert per_image.numpy()[1] > 0.0
    assert np.all(np.isfinite(grad))
    np.testing.assert_array_equal(grad[0], 0.0)


# --------------------------------------------------------------------- depth
def test_depth_matches_numpy_on_random_inputs_with_masks():
    gt = f32(RNG.uniform(0.5, 10.0, size=(3, 7, 9, 1)))
    gt[0, :2] = 0.0  # no geometry
    valid = f32(RNG.random((3, 7, 9, 1)) < 0.8) * (gt > 0)
    pred = f32(RNG.normal(size=gt.shape))
    got = losses.depth_loss_per_example(pred, gt, valid).numpy()
    np.testing.assert_allclose(got, depth_np(pred, gt, valid), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("offset", [0.0, 0.3, -1.7])
def test_depth_constant_log_offset_is_scale_invariant(offset):
    # d ≡ c: mean(d²) − 0.5·mean(d)² = c² − c²/2 = c²/2 (the loss forgives half a global scale).
    gt = f32(RNG.uniform(0.5, 5.0, size=(2, 6, 6, 1)))
    pred = np.log(gt) + offset
    got = losses.depth_loss_per_example(pred, gt, np.ones_like(gt)).numpy()
    np.testing.assert_allclose(got, [0.5 * offset**2] * 2, atol=1e-6)


def test_depth_hand_computed_residuals():
    # d = (1, −1, 2, 0): mean(d²) = 6/4, mean(d) = 1/2 → 1.5 − 0.125 = 1.375.
    gt = f32([[1.0, 2.0], [4.0, 8.0]])[None, ..., None]
    d = f32([[1.0, -1.0], [2.0, 0.0]])[None, ..., None]
    got = losses.depth_loss_per_example(np.log(gt) + d, gt, np.ones_like(gt)).numpy()
    np.testing.assert_allclose(got, [1.375], rtol=1e-6)


def test_depth_invalid_pixels_do_not_matter():
    gt = f32(RNG.uniform(1.0, 4.0, size=(1, 8, 8, 1)))
    valid = np.ones_like(gt)
    valid[0, :3] = 0.0
    gt_holes = gt.copy()
    gt_holes[0, :3] = 0.0
    pred = f32(RNG.normal(size=gt.shape))
    pred_other = pred.copy()
    pred_other[0, :3] = 100.0
    a = losses.depth_loss_per_example(pred, gt, valid).numpy()
    b = losses.depth_loss_per_example(pred_other, gt_holes, valid).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-6)
    # gt ≤ 0 is excluded even where the mask says valid.
    c = losses.depth_loss_per_example(pred_other, gt_holes, np.ones_like(gt)).numpy()
    np.testing.assert_allclose(c, a, rtol=1e-6)


def test_depth_all_invalid_is_zero_with_finite_gradient():
    gt = np.zeros((2, 5, 5, 1), np.float32)
    gt[1] = 2.0
    valid = (gt > 0).astype(np.float32)
    pred = tf.Variable(RNG.normal(size=gt.shape).astype(np.float32))
    with tf.GradientTape() as tape:
        per_image = losses.depth_loss_per_example(pred, gt, valid)
        total = tf.reduce_sum(per_image)
    grad = tape.gradient(total, pred).numpy()
    assert per_image.numpy()[0] == 0.0
    assert np.all(np.isfinite(grad))
    np.testing.assert_array_equal(grad[0], 0.0)


# --------------------------------------------------------------------- normals
def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_normals_match_numpy_on_random_inputs_with_masks():
    gt = unit(RNG.normal(size=(3, 6, 7, 3)))
    pred = f32(RNG.normal(scale=4.0, size=gt.shape))  # unnormalised network output
    valid = f32(RNG.random((3, 6, 7, 1)) < 0.7)
    gt = gt * valid  # the contract: 0 where invalid
    got = losses.normals_loss_per_example(pred, gt, valid).numpy()
    np.testing.assert_allclose(got, normals_np(pred, gt, valid), rtol=1e-5)


def test_normals_gradient_matches_float64_cosine_gradient():
    # d(−cos)/dp = −(t̂ − cos·p̂)/‖p‖ per valid pixel, ÷ the image's valid count; 0 elsewhere.
    gt = unit(RNG.normal(size=(2, 5, 6, 3)))
    pred = f32(RNG.normal(scale=4.0, size=gt.shape))
    valid = f32(RNG.random((2, 5, 6, 1)) < 0.7)
    gt = gt * valid
    p = tf.constant(pred)
    with tf.GradientTape() as tape:
        tape.watch(p)
        loss = tf.reduce_sum(losses.normals_loss_per_example(p, gt, valid))
    got = tape.gradient(loss, p).numpy()
    p64, t64 = pred.astype(np.float64), gt.astype(np.float64)
    norm = np.linalg.norm(p64, axis=-1, keepdims=True)
    p_hat = p64 / norm
    cos = np.sum(p_hat * t64, axis=-1, keepdims=True)
    count = valid.sum(axis=(1, 2, 3), keepdims=True)
    want = -(t64 - cos * p_hat) / norm * valid / count
    # Each element is a few float32 products and one difference of terms bounded by
    # 2/(‖p‖·count): 16 roundings of that bound is a generous float32 allowance.
    bound = 16 * np.finfo(np.float32).eps * 2 / (norm * count)
    assert np.all(np.abs(got - want) <= bound)


@pytest.mark.parametrize(
    "transform, expected",
    [
        (lambda n: 3.0 * n, -1.0),  # identical direction, any length
        (lambda n: -0.5 * n, 1.0),  # opposite
        (lambda n: np.cross(n, unit(RNG.normal(size=n.shape))), 0.0),  # orthogonal
    ],
    ids=["identical", "opposite", "orthogonal"],
)
def test_normals_closed_form_cases(transform, expected):
    gt = unit(RNG.normal(size=(2, 4, 4, 3)))
    pred = f32(transform(gt))
    got = losses.normals_loss_per_example(pred, gt, np.ones((2, 4, 4, 1), np.float32)).numpy()
    np.testing.assert_allclose(got, [expected] * 2, atol=1e-6)


def test_normals_mask_excludes_pixels_and_empty_mask_is_zero():
    gt = unit(np.tile([0.0, 0.0, -1.0], (2, 2, 2, 1)))
    pred = gt.copy()
    pred[0, 0, 0] = -gt[0, 0, 0]  # wrong, but masked out
    valid = np.ones((2, 2, 2, 1), np.float32)
    valid[0, 0, 0] = 0.0
    valid[1] = 0.0
    got = losses.normals_loss_per_example(pred, gt, valid).numpy()
    np.testing.assert_allclose(got, [-1.0, 0.0], atol=1e-6)


# --------------------------------------------------------------------- adversarial
@pytest.mark.parametrize("label", [losses.SYNTHETIC, losses.REAL, 0.5])
def test_patch_bce_matches_numpy(label):
    logits = f32(RNG.normal(scale=4.0, size=(3, 6, 6, 1)))
    got = losses.patch_bce_per_example(logits, label).numpy()
    expected = bce_np(logits, label).reshape(3, -1).mean(axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_patch_bce_is_minus_log_sigmoid_and_stays_finite_for_large_logits():
    logits = f32([-1e4, -30.0, 0.0, 30.0, 1e4]).reshape(5, 1, 1, 1)
    synthetic = losses.patch_bce_per_example(logits, losses.SYNTHETIC).numpy()
    real = losses.patch_bce_per_example(logits, losses.REAL).numpy()
    assert np.all(np.isfinite(synthetic)) and np.all(np.isfinite(real))
    # −log σ(l) = log(1 + e^{−l}); −log(1 − σ(l)) = log(1 + e^{l}).
    np.testing.assert_allclose(synthetic, [1e4, 30.0, np.log(2), 9.357623e-14, 0.0], rtol=1e-5)
    np.testing.assert_allclose(real, [0.0, 9.357623e-14, np.log(2), 30.0, 1e4], rtol=1e-5)
    x = tf.Variable(logits)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(losses.patch_bce_per_example(x, losses.SYNTHETIC))
    grad = tape.gradient(total, x).numpy().ravel()
    # d/dl log(1 + e^{−l}) = −σ(−l) = −(1 − tanh(l/2)) / 2 (overflow-free form).
    expected = -0.5 * (1.0 - np.tanh(logits.ravel().astype(np.float64) / 2.0))
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-12)


def test_patch_accuracy():
    logits = np.full((2, 2, 2, 1), -1.0, np.float32)
    logits[0, 0, 0] = 2.0  # image 0: 1 of 4 patches says "synthetic"
    logits[1] = 3.0  # image 1: all synthetic
    np.testing.assert_allclose(
        losses.patch_accuracy_per_example(logits, losses.SYNTHETIC).numpy(), [0.25, 1.0]
    )
    np.testing.assert_allclose(
        losses.patch_accuracy_per_example(logits, losses.REAL).numpy(), [0.75, 0.0]
    )
