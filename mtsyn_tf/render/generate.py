"""Renders procedural scenes in parallel processes and streams them into TFRecord shards.

Each worker process (``spawn`` context: Mitsuba/DrJit state must not be forked) renders
whole scenes; the parent encodes samples with :func:`mtsyn_tf.data.schema.encode_synthetic`
and streams them into :func:`mtsyn_tf.data.shards.write_shards`, so memory stays flat
however many images are rendered. Results arrive in scene-id order, so a dataset is a
pure function of its arguments (same seed → same shards, byte for byte).

Held-out split: ``train`` uses scene ids ``[0, num_scenes)`` and ``test`` uses ids
``[TEST_SCENE_ID_OFFSET, TEST_SCENE_ID_OFFSET + num_test_scenes)``, so test scenes never
overlap training scenes and stay the same when the training set grows.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator

from absl import logging

from mtsyn_tf.render import labels as labels_lib

TEST_SCENE_ID_OFFSET = 1_000_000
# Bumped whenever the same RenderConfig renders different pixels (2: denoiser guides from
# the label pass, roughplastic roughness on 4 levels; 3: fixed-size 128x128 textures for
# the frozen render passes). Caches of rendered sets keyed by
# settings (the demo's stamp) should include it so an older set is not reused as current.
RENDER_REVISION = 3
DEFAULT_IMAGES_PER_SHARD = 256


@dataclasses.dataclass(frozen=True)
class RenderConfig:
    """Everything that determines the rendered pixels (besides the scene id)."""

    resolution: int = 227
    # 4 samples + Open Image Denoise: the PSNR table of benchmarks/render_throughput.py.
    spp: int = 4
    max_depth: int = 4
    seed: int = 0
    views_per_scene: int = 1
    variant: str = "auto"
    denoise: str = "fast"  # "off" or an OIDN quality: fast | balanced | high

    def __post_init__(self):
        for name in ("resolution", "spp", "max_depth", "views_per_scene"):
            if int(getattr(self, name)) < 1:
                raise ValueError(
                    f"RenderConfig.{name} must be >= 1. Received: {name}={getattr(self, name)}"
                )
        if self.seed < 0:
            raise ValueError(f"RenderConfig.seed must be >= 0. Received: seed={self.seed}")
        if self.denoise not in ("off", "fast", "balanced", "high"):
            raise ValueError(
                "RenderConfig.denoise must be 'off', 'fast', 'balanced' or 'high'. "
                f"Received: denoise={self.denoise!r}"
            )


def prepare_output_dir(path: str, overwrite: bool) -> None:
    """Makes ``path`` an empty directory; refuses to clobber a non-empty one unless asked."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"--output_dir exists and is not a directory. Received: {path!r}")
    if os.path.isdir(path) and os.listdir(path):
        if not overwrite:
            raise ValueError(
                f"--output_dir is not empty: {path!r}. Pass --overwrite to replace its contents."
            )
        logging.warning("--overwrite: removing the existing contents of %s", path)
        shutil.rmtree(path)
    os.makedirs(path, exist_ok=True)


def split_scene_ids(num_scenes: int, num_test_scenes: int = 0) -> dict[str, range]:
    """Disjoint scene-id ranges per split (empty splits are left out)."""
    if num_scenes < 0 or num_test_scenes < 0:
        raise ValueError(
            f"Scene counts must be >= 0. Received: num_scenes={num_scenes}, num_test_scenes={num_test_scenes}"
        )
    if num_scenes > TEST_SCENE_ID_OFFSET:
        raise ValueError(
            f"num_scenes must be <= {TEST_SCENE_ID_OFFSET}. Received: num_scenes={num_scenes}"
        )
    splits = {
        "train": range(0, num_scenes),
        "test": range(TEST_SCENE_ID_OFFSET, TEST_SCENE_ID_OFFSET + num_test_scenes),
    }
    return {name: ids for name, ids in splits.items() if len(ids)}


def render_one(scene_id: int, config: RenderConfig, keep_noisy: bool = False) -> list[dict]:
    """Renders all views of one scene (runs inside a worker).

    ``keep_noisy`` adds the undenoised image as ``"image_noisy"`` (preview grids only)."""
    from mtsyn_tf.render import mitsuba_backend
    from mtsyn_tf.render import scene as scene_lib

    desc = scene_lib.make_scene(int(scene_id), seed=config.seed, num_views=config.views_per_scene)
    return mitsuba_backend.render_scene(
        desc,
        config.resolution,
        spp=config.spp,
        max_depth=config.max_depth,
        variant=config.variant,
        denoise=config.denoise,
        keep_noisy=keep_noisy,
    )


def _init_worker(variant: str, threads: int) -> None:
    import drjit as dr

    from mtsyn_tf.render import variant as variant_lib

    variant_lib.set_variant(variant)
    dr.set_thread_count(threads)


def worker_pool(config: RenderConfig, workers: int):
    """A ``spawn`` pool whose processes have the variant set and share the cores evenly.

    Always separate processes, even for ``workers=1``: the parent encodes with
    TensorFlow, and DrJit must never be imported after TensorFlow in one process.
    """
    if config.variant == "auto":
        raise ValueError(
            "worker_pool needs a concrete variant; call variant.resolve_variant first."
        )
    if workers < 1:
        raise ValueError(f"workers must be >= 1. Received: workers={workers}")
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")
    return ctx.Pool(workers, initializer=_init_worker, initargs=(config.variant, threads))


def iter_rendered(
    scene_ids: Iterable[int], config: RenderConfig, pool, keep_noisy_scenes: int = 0
) -> Iterator[dict]:
    """Yields the samples of ``scene_ids`` in scene order, rendered by ``pool``'s workers.

    The first ``keep_noisy_scenes`` scenes also carry ``"image_noisy"`` (for the preview grid).
    """
    scene_ids = list(scene_ids)
    keep = set(scene_ids[:keep_noisy_scenes])
    tasks = [(scene_id, scene_id in keep) for scene_id in scene_ids]
    for samples in pool.imap(_RenderTask(config), tasks, chunksize=1):
        yield from samples


class _RenderTask:
    """Picklable ``(scene_id, keep_noisy) -> samples`` callable for ``Pool.imap``."""

    def __init__(self, config: RenderConfig):
        self.config = config

    def __call__(self, task) -> list[dict]:
        scene_id, keep_noisy = task
        return render_one(scene_id, self.config, keep_noisy=keep_noisy)


class Progress:
    """Logs ``done/total images, elapsed, images/s, ETA`` at most every ``interval_s``."""

    def __init__(
        self, label: str, total: int, interval_s: float = 5.0, log: Callable = logging.info
    ):
        self.label, self.total, self.interval_s, self.log = label, total, interval_s, log
        self.done, self.start, self._last = 0, time.perf_counter(), -math.inf

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self._last >= self.interval_s or self.done >= self.total:
            self._last = now
            elapsed = now - self.start
            rate = self.done / elapsed if elapsed > 0 else float("nan")
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            bar = "#" * int(20 * self.done / max(self.total, 1))
            self.log(
                "%s [%-20s] %d/%d images, %.1f s, %.2f images/s, ETA %.0f s",
                self.label,
                bar,
                self.done,
                self.total,
                elapsed,
                rate,
                eta,
            )


def generate_dataset(
    output_dir: str,
    num_scenes: int,
    num_test_scenes: int = 0,
    config: RenderConfig | None = None,
    workers: int = 1,
    images_per_shard: int = DEFAULT_IMAGES_PER_SHARD,
    overwrite: bool = False,
    keep_samples: int = 0,
) -> dict:
    """Renders the train/test splits into ``output_dir`` (TFRecord shards + manifest.json).

    Returns a summary: images per split, seconds, images/s, the variant used, and (for a
    preview grid) the first ``keep_samples`` training samples under ``"samples"``.
    """
    from mtsyn_tf.data import schema, shards
    from mtsyn_tf.render import variant as variant_lib

    config = config or RenderConfig()
    if workers < 1:
        raise ValueError(f"workers must be >= 1. Received: workers={workers}")
    if images_per_shard < 1:
        raise ValueError(
            f"images_per_shard must be >= 1. Received: images_per_shard={images_per_shard}"
        )
    splits = split_scene_ids(num_scenes, num_test_scenes)
    if not splits:
        raise ValueError("Nothing to render: num_scenes and num_test_scenes are both 0.")
    config = dataclasses.replace(config, variant=variant_lib.resolve_variant(config.variant))
    logging.info("Rendering %s with %s, %d worker(s) into %s", splits, config, workers, output_dir)

    summary = {"variant": config.variant, "splits": {}, "samples": []}
    start = time.perf_counter()
    with worker_pool(config, workers) as pool:
        for split, ids in splits.items():
            total = len(ids) * config.views_per_scene
            progress = Progress(f"render {split}", total)

            def records(ids=ids, progress=progress, split=split):
                keep_noisy = keep_samples if split == "train" else 0
                for sample in iter_rendered(ids, config, pool, keep_noisy_scenes=keep_noisy):
                    if split == "train" and len(summary["samples"]) < keep_samples:
                        summary["samples"].append(sample)
                    record = schema.encode_synthetic(sample)
                    progress.update()
                    yield record

            num_shards = max(1, math.ceil(total / images_per_shard))
            paths = shards.write_shards(
                records(),
                output_dir,
                split,
                num_shards,
                kind="synthetic",
                source=labels_lib.SOURCE,
                overwrite=overwrite,
            )
            summary["splits"][split] = {
                "images": progress.done,
                "shards": [os.path.basename(p) for p in paths],
            }
    seconds = time.perf_counter() - start
    images = sum(s["images"] for s in summary["splits"].values())
    summary.update(
        images=images,
        seconds=seconds,
        images_per_s=images / seconds if seconds > 0 else float("nan"),
    )
    logging.info(
        "Rendered %d images in %.1f s (%.2f images/s, %.2f s/image per worker) with %s.",
        images,
        seconds,
        summary["images_per_s"],
        seconds * workers / max(images, 1),
        config.variant,
    )
    return summary
