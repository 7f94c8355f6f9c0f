"""The GPU-hours estimate the README quotes, and the report's bar charts."""

import numpy as np
import pytest

from mtsyn_tf.ablation import plots
from mtsyn_tf.ablation.grid import estimate, get_grid


def test_paper_grid_estimate_matches_the_readme():
    est = estimate(get_grid("paper"), "ws", {}, sustained_tflops=400.0)
    # 30 epochs × ceil(500000 / 224) steps × 224 images × (75 + 2.2) GFLOP.
    per_run = 30 * 2233 * 224 * 77.2e9 / 1e15
    assert est["pflop_per_run"]["multitask_da_conv5"] == pytest.approx(per_run)
    assert est["runs"] == 27
    assert est["device_hours"] == pytest.approx(27 * per_run * 1e15 / 400e12 / 3600)
    assert 21 < est["device_hours"] < 23  # README: ≈ 22 GPU-hours at 400 TFLOP/s
    with pytest.raises(ValueError, match="sustained_tflops"):
        estimate(get_grid("paper"), "ws", {}, sustained_tflops=0.0)


def test_bar_chart_draws_each_series_and_rejects_nothing():
    image = plots.bar_chart(
        ["conv1", "conv5"], {"a": [(2.0, 0.5), None], "b": [(1.0, 0.0), (3.0, 0.1)]}, "t"
    )
    assert image.dtype == np.uint8 and image.shape[2] == 3
    for colour in plots._COLOURS[:2]:  # both series' colours appear (RGB)
        assert np.any(np.all(image == np.array(colour, np.uint8), axis=-1))
    with pytest.raises(ValueError, match="Nothing to plot"):
        plots.bar_chart(["conv1"], {"a": [None]}, "empty")
