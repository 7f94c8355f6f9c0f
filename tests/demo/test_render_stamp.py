"""The demo reuses a rendered set (or real shards) only when made with the same pixels' recipe."""

import json
import os

from mtsyn_tf.demo import run as demo_run
from mtsyn_tf.render import generate


def _fake_generate(calls):
    def generate_dataset(path, num_scenes, num_test_scenes, render_config, **kwargs):
        calls.append(render_config)
        os.makedirs(path, exist_ok=True)
        return {"images": num_scenes + num_test_scenes}

    return generate_dataset


def test_stamp_reuses_same_settings_and_rerenders_after_a_renderer_revision(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(generate, "generate_dataset", _fake_generate(calls))
    from mtsyn_tf.data import shards

    monkeypatch.setattr(shards, "list_shards", lambda path, split: [])
    cfg = demo_run.DemoConfig(workspace=str(tmp_path), num_scenes=2, num_test_scenes=1)
    path = str(tmp_path / "synthetic")

    demo_run.render_synthetic_data(cfg, path)
    assert len(calls) == 1
    stamp = json.load(open(os.path.join(path, "demo_render_settings.json")))
    assert stamp["render_revision"] == generate.RENDER_REVISION

    assert demo_run.render_synthetic_data(cfg, path)["reused"] is True
    assert len(calls) == 1

    # A set stamped by an older renderer renders different pixels: it is rendered again.
    monkeypatch.setattr(generate, "RENDER_REVISION", generate.RENDER_REVISION + 1)
    demo_run.render_synthetic_data(cfg, path)
    assert len(calls) == 2


def test_real_shards_are_reused_only_with_the_same_short_side(tmp_path, monkeypatch):
    from mtsyn_tf.data import real_domain

    calls = []
    write = real_domain.write_real_shards

    def counted(*args, **kwargs):
        calls.append(kwargs.get("short_side"))
        return write(*args, **kwargs)

    monkeypatch.setattr(real_domain, "write_real_shards", counted)
    path = str(tmp_path / "real")
    # Shards of an older demo (full-size photos, no stamp) are written again.
    write(real_domain.EMBEDDED, path, short_side=None)
    demo_run._real_domain(path)
    assert calls == [real_domain.PLACES365_SIDE]
    assert demo_run._real_domain(path) == {"reused": True, "records": 8}
    assert len(calls) == 1
    monkeypatch.setattr(real_domain, "PLACES365_SIDE", 300)
    demo_run._real_domain(path)
    assert calls == [256, 300]
