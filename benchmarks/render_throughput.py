"""Renderer throughput (fresh scenes, cold and warm DrJit cache) and denoising quality.

1. **Throughput**: ``--workers`` spawned render processes (the cores split evenly between
   them, as ``scripts/render.py`` does) render ``--num_scenes`` scenes never rendered
   before (full samples: RGB + depth + normals + instance ids + contours). First with an
   empty DrJit kernel cache (each worker's ``$HOME`` points at a new temporary directory,
   because DrJit keeps its disk cache in ``$HOME/.drjit``; the user's cache is untouched),
   then again in new processes that find the kernels on disk. Wall-clock images/s
   including process start, and render CPU seconds per image (summed over workers, so it
   does not depend on how busy a shared machine is).
2. **Where the time goes**: ``--profile_scenes`` fresh scenes in one new process (empty
   DrJit cache, one core's share of threads as in a ``--workers`` run): CPU seconds per
   phase (scene update, label pass with the denoiser guides, rgb pass, OIDN, label
   extraction) for the first scene (kernel compilation) and the mean of the later ones;
   DrJit's kernel history splits the passes into tracing (recording the Python/C++ calls
   and generating IR, paid for every render), LLVM compilation and kernel execution. The parent then times the TFRecord
   encoding of the same samples. The passes are frozen functions (mitsuba_backend): the
   first two scenes and each new pattern of lit emitters *record* (~1.5x a traced pass),
   the others replay, so the "later" mean needs more than a handful of scenes.
3. **Quality**: for ``--psnr_scenes`` scenes, PSNR of ``--psnr_spp`` renders, noisy and
   denoised with each ``--qualities`` OIDN setting, against a ``--reference_spp`` render
   (no denoising), all tone-mapped with the reference's exposure: mean +- standard
   deviation over the scenes, and the render + denoise CPU seconds per image per row.

    python benchmarks/render_throughput.py --num_scenes=224 --workers=2
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
# The demo's count (192 + 32): each worker records its frozen passes once (~2 CPU s) and
# starts a process, which a dozen scenes do not amortise (12 gave 2.3 images/s where the
# demo's 224 render at 4.9-5.6 on the same cores).
flags.DEFINE_integer("num_scenes", 224, "Fresh scenes per throughput run.")
flags.DEFINE_integer("first_scene", 500_000, "First scene id (ids no other run renders).")
flags.DEFINE_integer("workers", 2, "Render processes.")
flags.DEFINE_integer("resolution", 227, "Square image size.")
flags.DEFINE_integer("spp", None, "Samples per pixel (default: RenderConfig's).")
flags.DEFINE_string("denoise", None, "off | fast | balanced | high (default: RenderConfig's).")
flags.DEFINE_integer("max_depth", 4, "Maximum path length.")
flags.DEFINE_integer("profile_scenes", 16, "Fresh scenes in the phase profile (0: skip it).")
flags.DEFINE_integer("psnr_scenes", 8, "Scenes in the PSNR table (0: skip it).")
flags.DEFINE_list("psnr_spp", ["1", "2", "4", "8", "16"], "Sample counts in the PSNR table.")
flags.DEFINE_list("qualities", ["fast", "balanced"], "OIDN qualities in the table.")
flags.DEFINE_integer("reference_spp", 256, "Samples per pixel of the PSNR reference.")


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


def _profile_worker(args) -> tuple[list[dict], list[dict]]:
    """Runs in one spawned process with an empty DrJit cache: per scene, CPU s per phase
    with DrJit's kernel history per phase; and the samples for the encoding."""
    scene_ids, config, threads, home = args
    _init_worker(home, config.variant, threads)
    from mtsyn_tf.render import mitsuba_backend
    from mtsyn_tf.render import scene as scene_lib

    rows, samples = [], []
    for scene_id in scene_ids:
        desc = scene_lib.make_scene(scene_id, seed=config.seed)
        times = mitsuba_backend.PhaseTimes(kernel_history=True)
        samples += mitsuba_backend.render_scene_in_process(
            desc,
            config.resolution,
            config.spp,
            config.max_depth,
            config.variant,
            True,
            config.denoise,
            phase_times=times,
        )
        rows.append({k: (v, times.kernels.get(k, {})) for k, v in times.seconds.items()})
    return rows, samples


def profile(config, scene_ids, workers: int) -> None:
    """Prints the phase table (see module docstring, item 2)."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    with tempfile.TemporaryDirectory(prefix="drjit_cold_home_") as home:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            args = (list(scene_ids), config, threads, home)
            rows, samples = pool.apply(_profile_worker, (args,))
    from mtsyn_tf.data import schema  # TensorFlow: only after the render processes

    start = time.process_time()
    for sample in samples:
        schema.encode_synthetic(sample)
    encode = (time.process_time() - start) / len(samples)
    first, later = rows[0], rows[1:] or rows

    def mean(phase, field=None):
        values = [r[phase][0] if field is None else r[phase][1].get(field, 0.0) for r in later]
        return float(np.mean(values))

    total_first = sum(v for v, _ in first.values()) + encode
    total = sum(mean(k) for k in first) + encode
    print(
        f"\nWhere a fresh scene's time goes: CPU s/image, {threads} DrJit thread(s), empty "
        f"kernel cache; first scene, then the mean of {len(later)} later ones; DrJit kernels "
        "launched per phase and those compiled (not found in the in-memory kernel cache)"
    )
    print(f"{'phase':<20}{'first':>7}{'later':>7}{'share':>7}{'kernels':>9}{'compiled':>10}")
    for k in first:
        value = mean(k)
        print(
            f"{k:<20}{first[k][0]:>7.3f}{value:>7.3f}{value / total:>7.0%}"
            f"{mean(k, 'kernels'):>9.0f}{mean(k, 'compiled'):>10.1f}"
        )
    print(f"{'TFRecord encoding':<20}{encode:>7.3f}{encode:>7.3f}{encode / total:>7.0%}")
    print(f"{'total':<20}{total_first:>7.3f}{total:>7.3f}")
    print(
        f"Cores / later CPU s = {(os.cpu_count() or 1) / total:.2f} images/s at most with "
        "every core rendering fresh scenes (process start and first-scene compilation aside)."
    )


def psnr(a_uint8: np.ndarray, b_uint8: np.ndarray) -> float:
    mse = np.mean((a_uint8.astype(np.float64) - b_uint8.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def _quality_table(args) -> dict:
    """Runs in a spawned process (no TensorFlow): {(spp, mode): [(psnr, cpu s), ...]}, one
    entry per scene."""
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
    return rows


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
    if FLAGS.profile_scenes > 0:
        first = FLAGS.first_scene + FLAGS.num_scenes
        profile(config, range(first, first + FLAGS.profile_scenes), FLAGS.workers)
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
    scenes = list(range(FLAGS.psnr_scenes))
    chunks = [
        scenes[k :: FLAGS.workers] for k in range(FLAGS.workers) if scenes[k :: FLAGS.workers]
    ]
    qualities = [q for q in FLAGS.qualities if q]
    args = [
        (
            chunk,
            FLAGS.resolution,
            FLAGS.max_depth,
            config.variant,
            spp_list,
            qualities,
            FLAGS.reference_spp,
        )
        for chunk in chunks
    ]
    with multiprocessing.get_context("spawn").Pool(len(chunks)) as pool:
        parts = pool.map(_quality_table, args, chunksize=1)
    rows = {}
    for part in parts:
        for key, values in part.items():
            rows.setdefault(key, []).extend(values)
    print(
        f"\nPSNR (dB) vs a {FLAGS.reference_spp}-spp render over {FLAGS.psnr_scenes} scenes "
        "(mean +- std, min); render + denoise CPU s/image on one thread"
    )
    print(f"{'spp':>4}  {'denoise':<10}{'PSNR dB':>16}{'min':>7}{'CPU s':>8}")
    for spp, mode in sorted(rows, key=lambda r: (r[0], r[1] != "off", r[1])):
        values = np.array([v for v, _ in rows[spp, mode]])
        cpu = np.mean([c for _, c in rows[spp, mode]])
        spread = f"{values.mean():.2f} +- {values.std():.2f}"
        print(f"{spp:>4}  {mode:<10}{spread:>16}{values.min():>7.2f}{cpu:>8.3f}")


if __name__ == "__main__":
    app.run(main)
