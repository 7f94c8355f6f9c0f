"""Renderer throughput (fresh scenes, cold and warm DrJit cache) and denoising quality.

1. **Throughput**: ``--workers`` spawned render processes (the cores split evenly between
   them, as ``scripts/render.py`` does) render ``--num_scenes`` scenes never rendered
   before (full samples: RGB + depth + normals + instance ids + contours). First with an
   empty DrJit kernel cache (each worker's ``$HOME`` points at a new temporary directory,
   because DrJit keeps its disk cache in ``$HOME/.drjit``; the user's cache is untouched),
   then again in new processes that find the kernels on disk. Wall-clock images/s
   including process start, and render CPU seconds per image (summed over workers, so it
   does not depend on how busy a shared machine is).
2. **Quality**: for ``--psnr_scenes`` scenes, PSNR of ``--psnr_spp`` renders, noisy and
   denoised with each ``--qualities`` OIDN setting, against a ``--reference_spp`` render
   (no denoising), all tone-mapped with the reference's exposure; plus the render +
   denoise CPU seconds per image for each row.

    python benchmarks/render_throughput.py --num_scenes=12 --workers=2
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_scenes", 12, "Fresh scenes per throughput run.")
flags.DEFINE_integer("first_scene", 500_000, "First scene id (ids no other run renders).")
flags.DEFINE_integer("workers", 2, "Render processes.")
flags.DEFINE_integer("resolution", 227, "Square image size.")
flags.DEFINE_integer("spp", None, "Samples per pixel (default: RenderConfig's).")
flags.DEFINE_string("denoise", None, "off | fast | balanced | high (default: RenderConfig's).")
flags.DEFINE_integer("max_depth", 4, "Maximum path length.")
flags.DEFINE_integer("psnr_scenes", 2, "Scenes in the PSNR table (0: skip it).")
flags.DEFINE_list("psnr_spp", ["1", "2", "4", "8", "16"], "Sample counts in the PSNR table.")
flags.DEFINE_list("qualities", ["fast", "balanced"], "OIDN qualities in the table.")
flags.DEFINE_integer("reference_spp", 512, "Samples per pixel of the PSNR reference.")


def _init_worker(home: str, variant: str, threads: int) -> None:
    # Before DrJit is imported: its disk cache lives in $HOME/.drjit.
    os.environ["HOME"] = home
    from mtsyn_tf.render import generate

    generate._init_worker(variant, threads)


def _render_timed(task) -> tuple[float, int]:
    scene_id, config = task
    from mtsyn_tf.render import generate

    start = time.process_time()
    samples = generate.render_one(scene_id, config)
    assert all(s["valid"].any() and s["contour"].any() for s in samples)
    return time.process_time() - start, len(samples)


def throughput(config, scene_ids, workers: int, home: str) -> dict:
    """Renders ``scene_ids`` in fresh worker processes whose DrJit cache is ``home``."""
    ctx = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // workers)
    start = time.perf_counter()
    with ctx.Pool(workers, initializer=_init_worker, initargs=(home, config.variant, threads)) as p:
        results = p.map(_render_timed, [(i, config) for i in scene_ids], chunksize=1)
    seconds = time.perf_counter() - start
    images = sum(n for _, n in results)
    return {
        "images_per_s": images / seconds,
        "cpu_s_per_image": sum(c for c, _ in results) / images,
        "seconds": seconds,
    }


def psnr(a_uint8: np.ndarray, b_uint8: np.ndarray) -> float:
    mse = np.mean((a_uint8.astype(np.float64) - b_uint8.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def _quality_table(args) -> list[tuple]:
    """Runs in one spawned process (no TensorFlow): rows (spp, mode, psnr, cpu s/image)."""
    scene_ids, resolution, max_depth, variant, spp_list, qualities, reference_spp = args
    from mtsyn_tf.render import generate, labels, mitsuba_backend
    from mtsyn_tf.render import scene as scene_lib

    generate._init_worker(variant, threads=1)
    rows = {}
    for scene_id in scene_ids:
        desc = scene_lib.make_scene(scene_id)
        (ref, _), *_ = mitsuba_backend.render_linear_rgb(
            desc, resolution, reference_spp, max_depth, variant, "off"
        )
        scale = labels.exposure(ref)
        ref8 = labels.tonemap(ref, scale=scale)
        for spp in spp_list:
            for mode in ("off", *qualities):
                # Warm-up render: compiles this setting's kernels outside the timing.
                mitsuba_backend.render_linear_rgb(desc, resolution, spp, max_depth, variant, mode)
                start = time.process_time()
                (rgb, _), *_ = mitsuba_backend.render_linear_rgb(
                    desc, resolution, spp, max_depth, variant, mode
                )
                cpu = time.process_time() - start
                value = psnr(labels.tonemap(rgb, scale=scale), ref8)
                rows.setdefault((spp, mode), []).append((value, cpu))
    return [
        (spp, mode, float(np.mean([v for v, _ in r])), float(np.mean([c for _, c in r])))
        for (spp, mode), r in rows.items()
    ]


def main(argv):
    del argv
    from mtsyn_tf.render import generate
    from mtsyn_tf.render import variant as variant_lib

    overrides = {k: v for k, v in (("spp", FLAGS.spp), ("denoise", FLAGS.denoise)) if v}
    config = generate.RenderConfig(
        resolution=FLAGS.resolution,
        max_depth=FLAGS.max_depth,
        variant=variant_lib.resolve_variant("auto"),
        **overrides,
    )
    print(
        f"Render throughput: {config.variant}, {FLAGS.resolution}x{FLAGS.resolution}, "
        f"{config.spp} spp, denoise={config.denoise}, max_depth {config.max_depth}, "
        f"{FLAGS.workers} workers on {os.cpu_count()} cores, {FLAGS.num_scenes} fresh scenes"
    )
    if FLAGS.num_scenes > 0:
        ids = range(FLAGS.first_scene, FLAGS.first_scene + FLAGS.num_scenes)
        with tempfile.TemporaryDirectory(prefix="drjit_cold_home_") as home:
            cold = throughput(config, ids, FLAGS.workers, home)
            warm = throughput(config, ids, FLAGS.workers, home)
        print(f"{'DrJit cache':<26}{'images/s':>10}{'CPU s/image':>13}{'wall s':>9}")
        for name, r in (("cold (fresh machine)", cold), ("warm (kernels on disk)", warm)):
            rate, cpu, wall = r["images_per_s"], r["cpu_s_per_image"], r["seconds"]
            print(f"{name:<26}{rate:>10.2f}{cpu:>13.3f}{wall:>9.1f}")
        print(
            f"Cores / CPU s per image = {FLAGS.workers / cold['cpu_s_per_image']:.2f} images/s "
            "on otherwise idle cores (cold run)."
        )
    if FLAGS.psnr_scenes <= 0:
        return
    spp_list = [int(s) for s in FLAGS.psnr_spp]
    args = (
        list(range(FLAGS.psnr_scenes)),
        FLAGS.resolution,
        FLAGS.max_depth,
        config.variant,
        spp_list,
        [q for q in FLAGS.qualities if q],
        FLAGS.reference_spp,
    )
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        rows = pool.apply(_quality_table, (args,))
    print(
        f"\nPSNR (dB) vs a {FLAGS.reference_spp}-spp render, mean of {FLAGS.psnr_scenes} "
        "scenes; render + denoise CPU s/image on one thread"
    )
    print(f"{'spp':>4}  {'denoise':<10}{'PSNR dB':>9}{'CPU s':>8}")
    for spp, mode, value, cpu in sorted(rows, key=lambda r: (r[0], r[1] != "off", r[1])):
        print(f"{spp:>4}  {mode:<10}{value:>9.2f}{cpu:>8.3f}")


if __name__ == "__main__":
    app.run(main)
