"""How separable are synthetic and real features? Proxy A-distance per tap (Ben-David et al.).

PAD = 2(1 − 2ε), where ε is the held-out error of a linear classifier trained to tell the
domains apart. Protocol here:

* features: each tap adaptive-average-pooled to the linear-probe grid (≈9k dims, see
  ``mtsyn_tf.evaluation.features``), flattened, standardised on the training half;
* balanced: the larger domain is subsampled (seeded) to the size of the smaller one;
* split by group: samples sharing a group id (e.g. several crops of one photo) fall in the
  same half, so the classifier cannot score by recognising a photo it trained on;
* classifier: L2-regularised logistic regression (scikit-learn, C = 1, lbfgs).

PAD ranges from −2 to 2; 0 means indistinguishable (ε = 0.5), 2 perfectly separable.
Values below 0 (ε > 0.5) are reported as measured: they say "indistinguishable" with noise.
"""

from __future__ import annotations

import numpy as np

from mtsyn_tf.evaluation.features import adaptive_avg_pool, extract_features, probe_grid_size

SYNTHETIC, REAL = 0, 1


def pooled_vectors(features) -> np.ndarray:
    """[N, h, w, c] → [N, D] with the probe grid (≈9k dims)."""
    f = np.asarray(features, dtype=np.float32)
    return adaptive_avg_pool(f, probe_grid_size(f.shape[1], f.shape[3])).reshape(len(f), -1)


def _group_halves(groups, rng) -> tuple[np.ndarray, np.ndarray]:
    unique = rng.permutation(np.unique(groups))
    train_groups = unique[: (len(unique) + 1) // 2]
    in_train = np.isin(groups, train_groups)
    return np.flatnonzero(in_train), np.flatnonzero(~in_train)


def proxy_a_distance(
    synthetic, real, synthetic_groups=None, real_groups=None, seed: int = 0
) -> dict:
    """PAD between two [N, D] feature sets (see module docstring).

    Returns:
        ``{"pad", "error", "num_train", "num_test", "dim"}``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    synthetic = np.asarray(synthetic, dtype=np.float64).reshape(len(synthetic), -1)
    real = np.asarray(real, dtype=np.float64).reshape(len(real), -1)
    if synthetic.shape[1] != real.shape[1]:
        raise ValueError(
            f"Feature dimensions differ. Received: synthetic {synthetic.shape}, real {real.shape}"
        )
    rng = np.random.default_rng(seed)
    domains = []
    for feats, groups, name in ((synthetic, synthetic_groups, "synthetic"), (real, real_groups, "real")):  # fmt: skip
        groups = np.arange(len(feats)) if groups is None else np.asarray(groups)
        if len(groups) != len(feats):
            raise ValueError(f"{name}_groups must have one id per row. Received: {len(groups)}")
        if len(np.unique(groups)) < 2:
            raise ValueError(
                f"{name} needs at least 2 groups to split. Received: {len(feats)} rows"
            )
        domains.append(_group_halves(groups, rng))
    # Balance each half across the domains.
    splits = []
    for half in (0, 1):
        n = min(len(domains[0][half]), len(domains[1][half]))
        idx = [rng.choice(domains[d][half], n, replace=False) for d in (0, 1)]
        x = np.concatenate([synthetic[idx[0]], real[idx[1]]])
        y = np.concatenate([np.full(n, SYNTHETIC), np.full(n, REAL)])
        splits.append((x, y))
    (x_train, y_train), (x_test, y_test) = splits
    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(C=1.0, max_iter=2000)
    clf.fit(scaler.transform(x_train), y_train)
    error = float(np.mean(clf.predict(scaler.transform(x_test)) != y_test))
    return {
        "pad": 2.0 * (1.0 - 2.0 * error),
        "error": error,
        "num_train": len(y_train),
        "num_test": len(y_test),
        "dim": int(x_train.shape[1]),
    }


def domain_gap_table(
    models: dict,
    synthetic_images,
    real_images,
    taps=("conv1", "conv3", "conv5", "fc7"),
    real_groups=None,
    seed: int = 0,
) -> dict:
    """``{model name: {tap: PAD result}}`` for ``models = {name: (model, grayscale)}``.

    Compare a DA run with a no-DA run: lower PAD at the adapted tap is what the
    discriminator was trained to achieve.
    """
    table = {}
    for name, (model, grayscale) in models.items():
        syn = extract_features(model, synthetic_images, taps, grayscale=grayscale)
        real = extract_features(model, real_images, taps, grayscale=grayscale)
        table[name] = {
            tap: proxy_a_distance(
                pooled_vectors(syn[tap]),
                pooled_vectors(real[tap]),
                real_groups=real_groups,
                seed=seed,
            )  # fmt: skip
            for tap in taps
        }
    return table


def pca_2d(features) -> np.ndarray:
    """[N, D] → [N, 2] projection on the two leading principal axes (numpy SVD)."""
    f = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    centred = f - f.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T
