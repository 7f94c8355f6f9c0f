"""Progress lines: counts, rate and ETA from a controlled clock; the Keras training hook."""

from __future__ import annotations

import pytest

from mtsyn_tf import progress as progress_lib


def test_line_reports_rate_and_eta(monkeypatch):
    clock = iter([100.0, 104.0, 108.0])
    monkeypatch.setattr(progress_lib.time, "perf_counter", lambda: next(clock))
    lines = []
    p = progress_lib.Progress(
        "render", 10, "images", interval_s=1.0, log=lambda f, s: lines.append(s)
    )
    p.update(2)  # t = 4 s: 0.5 images/s, 8 left → 16 s
    p.update(2)  # t = 8 s: 4 done, 0.5 images/s, 6 left → 12 s
    assert lines == [
        "render [####                ] 2/10 images, 4 s, 0.50 images/s, ETA 16 s",
        "render [########            ] 4/10 images, 8 s, 0.50 images/s, ETA 12 s",
    ]


def test_logs_at_most_every_interval_but_always_the_last():
    lines = []
    p = progress_lib.Progress("x", 5, interval_s=3600.0, log=lambda f, s: lines.append(s))
    for _ in range(5):
        p.update()
    assert len(lines) == 2 and lines[-1].startswith("x [####################] 5/5 items")


def test_rejects_empty_total():
    with pytest.raises(ValueError, match="total must be >= 1"):
        progress_lib.Progress("x", 0)


def test_training_callback_counts_steps_across_epochs():
    callback = progress_lib.training_callback(total_steps=6, images_per_step=4, interval_s=3600)
    lines = []
    callback.progress.log = lambda f, *a: lines.append(f % a)
    for _epoch in range(2):
        for step in range(3):
            callback.on_train_batch_end(step)
    assert callback.progress.done == 6
    assert "6/6 steps" in lines[-1]
