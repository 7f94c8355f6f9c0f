import itertools

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from mtsyn_tf.metrics.edge_matching import disc_offsets, match_edge_maps


def _brute_force_max_matching(pred, gt, max_dist):
    """Largest one-to-one matching by trying every injective assignment (tiny inputs)."""
    p = np.argwhere(pred)
    g = np.argwhere(gt)
    ok = np.linalg.norm(p[:, None, :] - g[None, :, :], axis=-1) <= max_dist
    best = 0
    for size in range(min(len(p), len(g)), 0, -1):
        for rows in itertools.combinations(range(len(p)), size):
            for cols in itertools.permutations(range(len(g)), size):
                if all(ok[r, c] for r, c in zip(rows, cols)):
                    return size
    return best


def _assignment_matching(pred, gt, max_dist):
    p = np.argwhere(pred)
    g = np.argwhere(gt)
    if len(p) == 0 or len(g) == 0:
        return 0
    ok = np.linalg.norm(p[:, None, :] - g[None, :, :], axis=-1) <= max_dist
    rows, cols = linear_sum_assignment(-ok.astype(float))
    return int(ok[rows, cols].sum())


def test_disc_offsets():
    assert len(disc_offsets(0.5)) == 1
    assert len(disc_offsets(1.0)) == 5
    assert len(disc_offsets(np.sqrt(2))) == 9
    assert len(disc_offsets(2.0)) == 13


@pytest.mark.parametrize("seed", range(12))
def test_matches_brute_force_on_tiny_maps(seed):
    rng = np.random.default_rng(seed)
    pred = rng.random((4, 4)) < 0.3
    gt = rng.random((4, 4)) < 0.3
    max_dist = [1.0, 1.5, 2.0][seed % 3]
    matched_pred, matched_gt = match_edge_maps(pred, gt, max_dist)
    assert matched_pred.sum() == matched_gt.sum() == _brute_force_max_matching(pred, gt, max_dist)
    assert not np.any(matched_pred & ~pred) and not np.any(matched_gt & ~gt)


@pytest.mark.parametrize("seed", range(5))
def test_matches_linear_assignment_on_small_maps(seed):
    rng = np.random.default_rng(100 + seed)
    pred = rng.random((20, 24)) < 0.15
    gt = rng.random((20, 24)) < 0.1
    matched_pred, _ = match_edge_maps(pred, gt, 2.3)
    assert matched_pred.sum() == _assignment_matching(pred, gt, 2.3)


def test_greedy_would_fail_but_matching_is_maximal():
    # pred A=(0,2) is nearest to gt (0,3) (distance 1) but also reaches gt (1,1) (1.41);
    # pred B=(0,4) only reaches gt (0,3). Nearest-first greedy gives 1 match, optimum 2.
    pred = np.zeros((2, 5), bool)
    gt = np.zeros((2, 5), bool)
    pred[0, [2, 4]] = True
    gt[0, 3] = gt[1, 1] = True
    matched_pred, matched_gt = match_edge_maps(pred, gt, 1.5)
    assert matched_pred.sum() == 2 and matched_gt.sum() == 2


def test_tolerance_is_inclusive_and_errors():
    pred = np.zeros((3, 3), bool)
    gt = np.zeros((3, 3), bool)
    pred[0, 0] = gt[1, 1] = True
    assert match_edge_maps(pred, gt, np.sqrt(2))[0].sum() == 1
    assert match_edge_maps(pred, gt, 1.4)[0].sum() == 0
    with pytest.raises(ValueError, match="different shapes"):
        match_edge_maps(np.zeros((2, 3)), np.zeros((3, 2)), 1.0)
    with pytest.raises(ValueError, match="max_dist"):
        match_edge_maps(pred, gt, -1.0)


def _has_augmenting_path(pred, gt, max_dist, pairs):
    """Berge: a matching is maximum iff no alternating path joins two free vertices."""
    gt_index = {tuple(p): i for i, p in enumerate(np.argwhere(gt))}
    preds = [tuple(p) for p in np.argwhere(pred)]
    offsets = disc_offsets(max_dist)
    neighbours = [
        [gt_index[(y + dy, x + dx)] for dy, dx in offsets if (y + dy, x + dx) in gt_index]
        for y, x in preds
    ]
    pred_of_gt = {g: p for p, g in pairs}
    matched_p = {p for p, _ in pairs}
    frontier = [i for i in range(len(preds)) if i not in matched_p]
    seen_gt = set()
    while frontier:
        next_frontier = []
        for p in frontier:
            for g in neighbours[p]:
                if g in seen_gt:
                    continue
                seen_gt.add(g)
                if g not in pred_of_gt:
                    return True
                next_frontier.append(pred_of_gt[g])
        frontier = next_frontier
    return False


def test_dense_layered_edge_map_is_fast_and_maximum():
    # scipy's Hopcroft-Karp (maximum_bipartite_matching) never returned on this kind of
    # map (a thresholded blurred grid, scipy issue #26147); the max-flow matcher must
    # finish quickly and leave no augmenting path.
    from scipy.ndimage import gaussian_filter
    from skimage.morphology import thin

    from mtsyn_tf.metrics import edge_matching

    rng = np.random.default_rng(0)
    gt = np.zeros((161, 241), bool)
    gt[::20, :] = gt[:, ::30] = True
    prob = gaussian_filter(gt.astype(float), 1.5) * 2.5 + 0.2 * rng.random(gt.shape)
    pred = thin(prob >= 0.1)
    max_dist = 0.0075 * np.hypot(*gt.shape)
    py, px = np.nonzero(pred)
    gy, gx = np.nonzero(gt)
    gt_id = {(y, x): i for i, (y, x) in enumerate(zip(gy, gx))}
    matched_pred, matched_gt = match_edge_maps(pred, gt, max_dist)
    assert matched_pred.sum() == matched_gt.sum() > 0
    rows, cols = [], []
    for i, (y, x) in enumerate(zip(py, px)):
        for dy, dx in disc_offsets(max_dist):
            j = gt_id.get((y + dy, x + dx))
            if j is not None:
                rows.append(i)
                cols.append(j)
    mp, mg = edge_matching._maximum_matching(np.array(rows), np.array(cols), py.size, gy.size)
    assert len(set(mp)) == len(mp) == len(set(mg)) == matched_pred.sum()
    assert all(np.hypot(py[p] - gy[g], px[p] - gx[g]) <= max_dist for p, g in zip(mp, mg))
    pairs = list(zip(mp, mg))
    assert not _has_augmenting_path(pred, gt, max_dist, pairs)
    assert _has_augmenting_path(pred, gt, max_dist, pairs[1:])  # the check itself can fail
