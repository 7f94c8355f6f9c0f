"""Render throughput per core: scalar_rgb vs llvm_ad_rgb at 227x227, 16 spp.

Each variant runs in its own spawned process limited to one render thread, renders one
warm-up scene (LLVM JIT compilation, file caches) and then ``--num_scenes`` timed scenes.
Prints seconds/image and images/s per core, side by side. ``llvm_ad_rgb`` is skipped
with the reason when it does not work on this machine (see mtsyn_tf.render.variant).

    python benchmarks/render_throughput.py --num_scenes=4
"""

from __future__ import annotations

import multiprocessing
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_scenes", 4, "Timed scenes per variant (after one warm-up scene).")
flags.DEFINE_integer("resolution", 227, "Square image size.")
flags.DEFINE_integer("spp", 16, "Samples per pixel.")
flags.DEFINE_integer("max_depth", 4, "Maximum path length.")
flags.DEFINE_list("variants", ["scalar_rgb", "llvm_ad_rgb"], "Variants to compare.")


def _time_variant(variant, num_scenes, resolution, spp, max_depth):
    from mtsyn_tf.render import generate

    generate._init_worker(variant, threads=1)
    config = generate.RenderConfig(
        resolution=resolution, spp=spp, max_depth=max_depth, variant=variant
    )
    t0 = time.perf_counter()
    generate.render_one(10_000, config)  # warm-up: JIT compilation, caches
    warmup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for scene_id in range(num_scenes):
        generate.render_one(scene_id, config)
    return warmup, (time.perf_counter() - t0) / num_scenes


def main(argv):
    del argv
    from mtsyn_tf.render import variant as variant_lib

    ctx = multiprocessing.get_context("spawn")
    print(
        f"Render throughput, 1 core, {FLAGS.resolution}x{FLAGS.resolution}, {FLAGS.spp} spp, max_depth {FLAGS.max_depth}"
    )
    print(f"{'variant':<14}{'first image s':>15}{'s/image':>10}{'images/s/core':>15}")
    for variant in FLAGS.variants:
        ok, reason = variant_lib.probe_variant(variant)
        if not ok:
            print(f"{variant:<14}  unavailable: {reason}")
            continue
        with ctx.Pool(1) as pool:
            warmup, per_image = pool.apply(
                _time_variant,
                (variant, FLAGS.num_scenes, FLAGS.resolution, FLAGS.spp, FLAGS.max_depth),
            )
        print(f"{variant:<14}{warmup:>15.2f}{per_image:>10.3f}{1.0 / per_image:>15.2f}")


if __name__ == "__main__":
    app.run(main)
