import numpy as np
import pytest

from mtsyn_tf.evaluation.domain_gap import pca_2d, proxy_a_distance
from mtsyn_tf.evaluation.scatter import scatter_png


def test_pad_separable_and_identical_domains():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (60, 10))
    far = proxy_a_distance(a, a + 10.0)
    assert far["error"] == 0.0 and far["pad"] == 2.0
    assert far["num_train"] == far["num_test"] == 60
    same = proxy_a_distance(a[:30], a[30:])
    assert same["pad"] == pytest.approx(2 * (1 - 2 * same["error"]))
    assert same["pad"] < 1.0  # same distribution: near chance


def test_groups_keep_crops_of_one_photo_together():
    """Real rows come in groups of 4 near-duplicates; a classifier cannot memorise a photo."""
    rng = np.random.default_rng(1)
    photos = rng.normal(0, 1, (10, 8))
    real = np.repeat(photos, 4, axis=0) + rng.normal(0, 0.01, (40, 8))
    syn = rng.normal(0, 1, (40, 8))
    r = proxy_a_distance(syn, real, real_groups=np.repeat(np.arange(10), 4), seed=3)
    assert r["num_train"] == 40 and r["num_test"] == 40  # 5 photos x 4 crops per half
    with pytest.raises(ValueError, match="one id per row"):
        proxy_a_distance(syn, real, real_groups=np.arange(3))
    with pytest.raises(ValueError, match="dimensions differ"):
        proxy_a_distance(syn, real[:, :4])


def test_pca_finds_the_dominant_axis_and_scatter_draws(tmp_path):
    rng = np.random.default_rng(2)
    t = rng.normal(0, 10, 50)
    x = np.stack([t, 0.1 * rng.normal(size=50), 0.1 * rng.normal(size=50)], axis=1)
    xy = pca_2d(x)
    assert abs(np.corrcoef(xy[:, 0], t)[0, 1]) > 0.999
    out = scatter_png({"synthetic": xy[:25], "real": xy[25:]}, str(tmp_path / "s.png"))
    assert (tmp_path / "s.png").stat().st_size > 0
    px = np.concatenate(list(out["pixels"].values()))
    assert px[:, 0].min() >= 20 and px[:, 0].max() <= 380  # inside the frame
