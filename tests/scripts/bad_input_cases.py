"""The bad-input corpus of docs/BAD_INPUTS.md: one function per row, same id.

Each ``case_<id>(w)`` builds its bad input under ``w.root`` (a directory of its own) and
returns a ``Case``: the script and its arguments, a fragment the one-line message must
contain, the input the message must name, paths that must be byte-for-byte unchanged
afterwards (``protect``) and paths that must not exist afterwards (``absent``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil

import cv2
import numpy as np

# A training invocation that finishes in seconds on the tiny fixture data.
TRAIN_FLAGS = [
    "--preset=small",
    "--batch_size=2",
    "--epochs=1",
    "--steps_per_epoch=1",
    "--verbose=0",
    "--eval_split=none",
    "--pool_size=4",
]


@dataclasses.dataclass
class Case:
    script: str
    args: list
    expect: str  # fragment of stderr's last line
    names: str  # the input (path or flag) the last line must name
    protect: list = dataclasses.field(default_factory=list)
    absent: list = dataclasses.field(default_factory=list)
    env: dict = dataclasses.field(default_factory=dict)
    fsize: int | None = None  # RLIMIT_FSIZE in bytes: writes past it fail like a full disk


class Workspace:
    """Paths of one case, plus the shared fixtures it may copy and damage."""

    def __init__(self, root: str, data_dir: str, run_dir: str, readonly_dir: str | None):
        self.root = root
        self.data_dir = data_dir
        self.run_dir = run_dir
        self.readonly_dir = readonly_dir
        os.makedirs(root, exist_ok=True)

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def file(self, name: str, text: str = "not a directory\n") -> str:
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def data(self) -> str:
        return shutil.copytree(self.data_dir, self.path("data"))

    def run(self) -> str:
        return shutil.copytree(self.run_dir, self.path("run"))

    def photos(self, **images) -> str:
        folder = self.path("photos")
        os.makedirs(folder, exist_ok=True)
        for name, content in images.items():
            name = name.replace("_dot_", ".")
            with open(os.path.join(folder, name), "wb") as f:
                f.write(content)
        return folder

    def readonly(self) -> str:
        if self.readonly_dir is None:
            import pytest

            pytest.skip("no read-only directory: needs a non-root user or root with mount")
        return self.readonly_dir


# === Helpers that damage data ===
def png_bytes(height: int = 40, width: int = 40) -> bytes:
    rng = np.random.default_rng(height * 1000 + width)
    image = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    return cv2.imencode(".png", image)[1].tobytes()


def shard_paths(data_dir: str, split: str = "train") -> list[str]:
    with open(os.path.join(data_dir, "manifest.json")) as f:
        manifest = json.load(f)
    return [os.path.join(data_dir, s["name"]) for s in manifest["splits"][split]["shards"]]


def edit_manifest(data_dir: str, edit) -> None:
    path = os.path.join(data_dir, "manifest.json")
    with open(path) as f:
        manifest = json.load(f)
    edit(manifest)
    with open(path, "w") as f:
        json.dump(manifest, f)


def flip_byte_in_record(path: str) -> None:
    """Flips one byte inside the first record's payload: same size, bad CRC."""
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        data[100] ^= 0xFF  # past the 12-byte length header, inside the serialized Example
        f.seek(0)
        f.write(data)


def reseal_manifest(data_dir: str) -> None:
    """Rewrites the manifest's sha256s and sizes to match the (damaged) files."""

    def edit(manifest):
        for split in manifest["splits"].values():
            for shard in split["shards"]:
                path = os.path.join(data_dir, shard["name"])
                with open(path, "rb") as f:
                    shard["sha256"] = hashlib.sha256(f.read()).hexdigest()
                shard["num_bytes"] = os.path.getsize(path)

    edit_manifest(data_dir, edit)


def truncate(path: str, keep: float = 0.5) -> None:
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(int(size * keep))


def checkpoint_data(run_dir: str) -> str:
    ckpt = os.path.join(run_dir, "checkpoints")
    return os.path.join(ckpt, [f for f in os.listdir(ckpt) if ".data-" in f][0])


def train_args(w: Workspace, data: str, workdir: str, *extra: str) -> list:
    return [f"--synthetic_dir={data}", f"--workdir={workdir}", *TRAIN_FLAGS, *extra]


# === render.py (no TensorFlow: these run first in the case process) ===
def case_render_resolution_zero(w):
    out = w.path("out")
    return Case(
        "render.py",
        [f"--output_dir={out}", "--resolution=0"],
        "must be >= 1",
        "--resolution",
        absent=[out],
    )


def case_render_negative_scenes(w):
    out = w.path("out")
    return Case(
        "render.py",
        [f"--output_dir={out}", "--num_scenes=-2"],
        "must be >= 0",
        "num_scenes=-2",
        absent=[out],
    )


def case_render_workers_zero(w):
    out = w.path("out")
    return Case(
        "render.py",
        [f"--output_dir={out}", "--workers=0"],
        "must be >= 1",
        "--workers",
        absent=[out],
    )


def case_render_nothing_to_render(w):
    out = w.path("out")
    return Case(
        "render.py",
        [f"--output_dir={out}", "--num_scenes=0", "--num_test_scenes=0"],
        "Nothing to render",
        "--num_scenes",
        absent=[out],
    )


def case_render_output_is_file(w):
    out = w.file("out")
    return Case(
        "render.py", [f"--output_dir={out}"], "exists and is not a directory", out, protect=[out]
    )


def case_render_output_not_empty(w):
    out = w.path("out")
    os.makedirs(out)
    w.file("out/old.tfrecord", "previous data")
    return Case("render.py", [f"--output_dir={out}"], "Pass --overwrite", out, protect=[out])


def case_render_output_below_file(w):
    parent = w.file("parent")
    out = os.path.join(parent, "out")
    return Case(
        "render.py", [f"--output_dir={out}"], "is a file, not a directory", parent, protect=[parent]
    )


def case_render_output_readonly(w):
    out = os.path.join(w.readonly(), "out")
    return Case("render.py", [f"--output_dir={out}"], "is not writable", out, absent=[out])


def case_render_bad_flag_value(w):
    return Case(
        "render.py",
        [f"--output_dir={w.path('out')}", "--spp=many"],
        "flag --spp=many",
        "--spp",
        absent=[w.path("out")],
    )


def case_render_missing_required_flag(w):
    return Case("render.py", [], "--output_dir must have a value", "--output_dir")


# === demo.py (no TensorFlow before its checks) ===
def case_demo_workspace_is_file(w):
    ws = w.file("workspace")
    return Case("demo.py", [f"--workspace={ws}"], "exists and is not a directory", ws, protect=[ws])


def case_demo_epochs_zero(w):
    ws = w.path("ws")
    return Case(
        "demo.py", [f"--workspace={ws}", "--epochs=0"], "must be >= 1", "--epochs", absent=[ws]
    )


def case_demo_unknown_preset(w):
    ws = w.path("ws")
    return Case(
        "demo.py",
        [f"--workspace={ws}", "--preset=huge"],
        "--preset must be one of",
        "huge",
        absent=[ws],
    )


def case_demo_warmup_with_step_schedule(w):
    ws = w.path("ws")
    return Case(
        "demo.py",
        [f"--workspace={ws}", "--lr_schedule=step", "--warmup_fraction=0.1"],
        "--warmup_fraction must be in [0, 1), and 0 with --lr_schedule=step",
        "--warmup_fraction=0.1",
        absent=[ws],
    )


# === make_tfrecords.py ===
def _mk(w, *extra):
    return ["--source=real_folder", f"--output_dir={w.path('out')}", *extra]


def case_mk_no_input_dir(w):
    return Case(
        "make_tfrecords.py",
        _mk(w),
        "needs --input_dir",
        "--source=real_folder",
        absent=[w.path("out")],
    )


def case_mk_input_missing(w):
    missing = w.path("nowhere")
    return Case(
        "make_tfrecords.py",
        _mk(w, f"--input_dir={missing}"),
        "does not exist",
        missing,
        absent=[w.path("out")],
    )


def case_mk_input_is_file(w):
    f = w.file("photos.jpg", "text")
    return Case(
        "make_tfrecords.py",
        _mk(w, f"--input_dir={f}"),
        "is not a directory",
        f,
        absent=[w.path("out")],
        protect=[f],
    )


def case_mk_input_empty(w):
    folder = w.path("empty")
    os.makedirs(folder)
    return Case(
        "make_tfrecords.py",
        _mk(w, f"--input_dir={folder}"),
        "No photos",
        folder,
        absent=[w.path("out")],
    )


def case_mk_text_renamed_jpg(w):
    folder = w.photos(good_dot_png=png_bytes(), notes_dot_jpg=b"just some text\n")
    return Case(
        "make_tfrecords.py",
        _mk(w, f"--input_dir={folder}"),
        "Not a readable JPEG/PNG",
        os.path.join(folder, "notes.jpg"),
        absent=[w.path("out")],
        protect=[folder],
    )


def case_mk_short_side_too_small(w):
    folder = w.photos(good_dot_png=png_bytes())
    return Case(
        "make_tfrecords.py",
        _mk(w, f"--input_dir={folder}", "--real_short_side=8"),
        "--real_short_side must be 0 (full size) or >= 16",
        "--real_short_side=8",
        absent=[w.path("out")],
        protect=[folder],
    )


def case_mk_one_pixel_image(w):
    folder = w.photos(tiny_dot_png=png_bytes(1, 1))
    return Case(
        "make_tfrecords.py",
        _mk(w, f"--input_dir={folder}"),
        "is 1x1 pixels",
        os.path.join(folder, "tiny.png"),
        absent=[w.path("out")],
        protect=[folder],
    )


def case_mk_truncated_png(w):
    folder = w.photos(cut_dot_png=png_bytes(64, 64)[:300])
    return Case(
        "make_tfrecords.py",
        _mk(w, f"--input_dir={folder}"),
        "Could not decode photo",
        os.path.join(folder, "cut.png"),
        absent=[w.path("out")],
        protect=[folder],
    )


def case_mk_output_is_file(w):
    folder = w.photos(a_dot_png=png_bytes())
    out = w.file("out")
    return Case(
        "make_tfrecords.py",
        ["--source=real_folder", f"--input_dir={folder}", f"--output_dir={out}"],
        "exists and is not a directory",
        out,
        protect=[out],
    )


def case_mk_output_wrong_kind(w):
    folder = w.photos(a_dot_png=png_bytes())
    out = w.data()  # synthetic shards
    return Case(
        "make_tfrecords.py",
        ["--source=real_folder", f"--input_dir={folder}", f"--output_dir={out}"],
        "already holds 'synthetic' shards",
        out,
        protect=[out],
    )


def case_mk_num_shards_zero(w):
    folder = w.photos(a_dot_png=png_bytes())
    return Case(
        "make_tfrecords.py",
        _mk(w, f"--input_dir={folder}", "--num_shards=0"),
        "num_shards must be >= 1",
        "num_shards=0",
        absent=[w.path("out")],
    )


def case_mk_disk_full(w):
    folder = w.photos(**{f"p{i}_dot_png": png_bytes(200, 200) for i in range(3)})
    return Case(
        "make_tfrecords.py",
        _mk(w, f"--input_dir={folder}"),
        "Could not write shard",
        w.path("out"),
        absent=[w.path("out")],
        fsize=20_000,
    )


# === train.py ===
def case_train_synthetic_missing(w):
    data, workdir = w.path("nowhere"), w.path("run")
    return Case("train.py", train_args(w, data, workdir), "does not exist", data, absent=[workdir])


def case_train_synthetic_empty(w):
    data, workdir = w.path("empty"), w.path("run")
    os.makedirs(data)
    return Case("train.py", train_args(w, data, workdir), "holds no shards", data, absent=[workdir])


def case_train_synthetic_is_real(w):
    data, workdir = w.data(), w.path("run")
    edit_manifest(data, lambda m: m.update(kind="real"))
    return Case(
        "train.py",
        train_args(w, data, workdir),
        "expected 'synthetic'",
        data,
        absent=[workdir],
        protect=[data],
    )


def case_train_data_cache_negative(w):
    data, workdir = w.data(), w.path("run")
    return Case(
        "train.py",
        [*train_args(w, data, workdir), "--data_cache_mb=-1"],
        "data_cache_mb must be >= 0",
        "data_cache_mb=-1",
        absent=[workdir],
    )


def case_train_manifest_not_json(w):
    data, workdir = w.data(), w.path("run")
    truncate(os.path.join(data, "manifest.json"), 0.5)
    return Case(
        "train.py",
        train_args(w, data, workdir),
        "Could not parse manifest",
        os.path.join(data, "manifest.json"),
        absent=[workdir],
        protect=[data],
    )


def case_train_manifest_damaged(w):
    data, workdir = w.data(), w.path("run")
    edit_manifest(data, lambda m: m["splits"]["train"].update(shards="all of them"))
    return Case(
        "train.py",
        train_args(w, data, workdir),
        "is damaged",
        os.path.join(data, "manifest.json"),
        absent=[workdir],
        protect=[data],
    )


def case_train_shard_missing(w):
    data, workdir = w.data(), w.path("run")
    shard = shard_paths(data)[1]
    os.remove(shard)
    return Case(
        "train.py",
        train_args(w, data, workdir),
        "listed in the manifest is missing",
        shard,
        absent=[workdir],
        protect=[data],
    )


def case_train_shard_truncated(w):
    data, workdir = w.data(), w.path("run")
    shard = shard_paths(data)[0]
    truncate(shard, 0.6)
    return Case(
        "train.py",
        train_args(w, data, workdir),
        "the manifest says",
        shard,
        absent=[workdir],
        protect=[data],
    )


def case_train_shard_bitflip(w):
    data, workdir = w.data(), w.path("run")
    shard = shard_paths(data)[1]
    flip_byte_in_record(shard)
    return Case(
        "train.py",
        train_args(w, data, workdir),
        "does not match the sha256",
        shard,
        absent=[workdir],
        protect=[data],
    )


def case_train_manifest_wrong_sha256(w):
    data, workdir = w.data(), w.path("run")
    shard = shard_paths(data)[0]
    edit_manifest(data, lambda m: m["splits"]["train"]["shards"][0].update(sha256="0" * 64))
    return Case(
        "train.py",
        train_args(w, data, workdir),
        "does not match the sha256",
        shard,
        absent=[workdir],
        protect=[data],
    )


def case_train_crc_error_while_training(w):
    """A record damaged before its manifest was written: only the CRC can tell."""
    data, workdir = w.data(), w.path("run")
    shard = shard_paths(data)[0]
    flip_byte_in_record(shard)
    reseal_manifest(data)
    return Case(
        "train.py",
        train_args(w, data, workdir),
        "Corrupt record in shard",
        shard,
        absent=[workdir],
        protect=[data],
    )


def case_train_workdir_is_file(w):
    workdir = w.file("run")
    return Case(
        "train.py",
        train_args(w, w.data_dir, workdir),
        "exists and is not a directory",
        workdir,
        protect=[workdir],
    )


def case_train_workdir_below_file(w):
    parent = w.file("runs")
    workdir = os.path.join(parent, "a")
    return Case(
        "train.py",
        train_args(w, w.data_dir, workdir),
        "is a file, not a directory",
        parent,
        protect=[parent],
    )


def case_train_workdir_readonly(w):
    workdir = os.path.join(w.readonly(), "run")
    return Case(
        "train.py", train_args(w, w.data_dir, workdir), "is not writable", workdir, absent=[workdir]
    )


def case_train_resume_other_batch_size(w):
    run = w.run()
    return Case(
        "train.py",
        train_args(w, w.data_dir, run, "--batch_size=4"),
        "batch_size (2 -> 4)",
        run,
        protect=[run],
    )


def case_train_resume_other_seed_and_steps(w):
    run = w.run()
    return Case(
        "train.py",
        train_args(w, w.data_dir, run, "--seed=3", "--steps_per_epoch=2"),
        "seed (0 -> 3), steps_per_epoch (1 -> 2)",
        run,
        protect=[run],
    )


def case_train_resume_other_data(w):
    run, data = w.run(), w.data()
    edit_manifest(data, lambda m: m.update(source="another_render"))
    return Case(
        "train.py", train_args(w, data, run), "synthetic_dir (other data", run, protect=[run, data]
    )


def case_train_resume_corrupt_config(w):
    run = w.run()
    truncate(os.path.join(run, "config.json"), 0.3)
    return Case(
        "train.py",
        train_args(w, w.data_dir, run),
        "is unreadable",
        os.path.join(run, "config.json"),
        protect=[run],
    )


def case_train_all_checkpoints_corrupt(w):
    run = w.run()
    truncate(checkpoint_data(run), 0.5)
    return Case(
        "train.py",
        train_args(w, w.data_dir, run),
        "No readable checkpoint",
        os.path.join(run, "checkpoints"),
        protect=[run],
    )


def case_train_batch_size_zero(w):
    workdir = w.path("run")
    return Case(
        "train.py",
        train_args(w, w.data_dir, workdir, "--batch_size=0"),
        "batch_size must be > 0",
        "batch_size=0",
        absent=[workdir],
    )


def case_train_flag_not_an_int(w):
    workdir = w.path("run")
    return Case(
        "train.py",
        train_args(w, w.data_dir, workdir, "--epochs=ten"),
        "flag --epochs=ten",
        "--epochs",
        absent=[workdir],
    )


def case_train_preset_overrides_not_json(w):
    workdir = w.path("run")
    return Case(
        "train.py",
        train_args(w, w.data_dir, workdir, "--preset_overrides={width"),
        "must be a JSON object",
        "--preset_overrides",
        absent=[workdir],
    )


def case_train_real_source_missing(w):
    workdir, real = w.path("run"), w.path("no_photos")
    return Case(
        "train.py",
        train_args(w, w.data_dir, workdir, f"--real_source={real}"),
        "--real_source must be",
        real,
        absent=[workdir],
    )


def case_train_real_photo_is_text(w):
    workdir = w.path("run")
    folder = w.photos(a_dot_png=png_bytes(), b_dot_jpg=b"GIF89a no jpeg")
    return Case(
        "train.py",
        train_args(w, w.data_dir, workdir, f"--real_source={folder}"),
        "Not a readable JPEG/PNG",
        os.path.join(folder, "b.jpg"),
        absent=[workdir],
        protect=[folder],
    )


def case_train_disk_full_at_checkpoint(w):
    workdir = w.path("run")
    return Case(
        "train.py",
        train_args(w, w.data_dir, workdir),
        "Could not write the epoch-1 checkpoint",
        os.path.join(workdir, "checkpoints"),
        absent=[workdir],
        fsize=400_000,
    )


def case_train_disk_full_keeps_last_checkpoint(w):
    """Epoch 2's save fails: no ckpt-2_temp/ or partial ckpt-2 files, ckpt-1 untouched."""
    run = w.run()
    config_path = os.path.join(run, "config.json")
    with open(config_path) as f:
        config = json.load(f)
    config["epochs"] = 2
    with open(config_path, "w") as f:
        json.dump(config, f)
    checkpoints = os.path.join(run, "checkpoints")
    return Case(
        "train.py",
        [*train_args(w, w.data_dir, run), "--epochs=2"],
        "The previous checkpoint is intact",
        os.path.join(checkpoints, "ckpt-1"),
        protect=[checkpoints],
        fsize=400_000,
    )


# === train_multi_worker.py ===
def case_mw_task_index_out_of_range(w):
    workdir = w.path("run")
    return Case(
        "train_multi_worker.py",
        train_args(
            w, w.data_dir, workdir, "--worker_hosts=localhost:1,localhost:2", "--task_index=5"
        ),
        "task_index",
        "--task_index",
        absent=[workdir],
    )


def case_mw_tf_config_not_json(w):
    workdir = w.path("run")
    return Case(
        "train_multi_worker.py",
        train_args(w, w.data_dir, workdir),
        "TF_CONFIG",
        "TF_CONFIG",
        absent=[workdir],
        env={"TF_CONFIG": "{cluster: none"},
    )


def case_mw_workdir_is_file(w):
    workdir = w.file("run")
    return Case(
        "train_multi_worker.py",
        train_args(w, w.data_dir, workdir),
        "exists and is not a directory",
        workdir,
        protect=[workdir],
    )


def case_mw_resume_other_batch_size(w):
    run = w.run()
    return Case(
        "train_multi_worker.py",
        train_args(w, w.data_dir, run, "--batch_size=3"),
        "batch_size (2 -> 3)",
        run,
        protect=[run],
    )


# === evaluate.py ===
def _eval(out, *extra):
    # motorcycle needs no other input: these cases are about the run itself.
    return ["--protocol=motorcycle", f"--output_dir={out}", *extra]


def case_eval_truncated_checkpoint(w):
    run, out = w.run(), w.path("report")
    truncate(checkpoint_data(run), 0.5)
    prefix = os.path.join(run, "checkpoints", "ckpt-1")
    return Case(
        "evaluate.py",
        _eval(out, f"--checkpoint={prefix}"),
        "checkpoint",
        prefix,
        absent=[out],
        protect=[run],
    )


def case_eval_workdir_missing(w):
    run, out = w.path("nowhere"), w.path("report")
    return Case(
        "evaluate.py", _eval(out, f"--workdir={run}"), "Checkpoint not found", run, absent=[out]
    )


def case_eval_workdir_and_checkpoint(w):
    out = w.path("report")
    return Case(
        "evaluate.py",
        _eval(out, f"--workdir={w.run_dir}", "--checkpoint=x"),
        "exactly one of --workdir and --checkpoint",
        "--checkpoint",
        absent=[out],
    )


def case_eval_output_below_file(w):
    parent = w.file("reports")
    out = os.path.join(parent, "r")
    return Case(
        "evaluate.py",
        _eval(out, f"--workdir={w.run_dir}"),
        "is a file, not a directory",
        parent,
        protect=[parent],
    )


def case_eval_config_not_json(w):
    run, out = w.run(), w.path("report")
    with open(os.path.join(run, "config.json"), "w") as f:
        f.write("{not json")
    return Case(
        "evaluate.py",
        _eval(out, f"--workdir={run}"),
        "Unreadable config.json",
        os.path.join(run, "config.json"),
        absent=[out],
        protect=[run],
    )


def case_eval_flag_not_for_protocol(w):
    out = w.path("report")
    return Case(
        "evaluate.py",
        ["--protocol=motorcycle", f"--output_dir={out}", f"--workdir={w.run_dir}", "--tap=conv5"],
        "No protocol of ['motorcycle'] takes ['tap']",
        "tap='conv5'",
        absent=[out],
    )


def case_eval_offline_without_shards(w):
    out = w.path("report")
    return Case(
        "evaluate.py",
        ["--protocol=all_offline", f"--output_dir={out}", f"--workdir={w.run_dir}"],
        "needs synthetic_dir",
        "synthetic_dir=None",
        absent=[out],
    )


# === export.py ===
def case_export_truncated_checkpoint(w):
    run, base = w.run(), w.path("serving")
    truncate(checkpoint_data(run), 0.5)
    return Case(
        "export.py",
        [f"--checkpoint={run}", f"--model_base_path={base}"],
        "checkpoint",
        os.path.join(run, "checkpoints", "ckpt-1"),
        absent=[base],
        protect=[run],
    )


def case_export_checkpoint_missing(w):
    run, base = w.path("nowhere"), w.path("serving")
    return Case(
        "export.py",
        [f"--checkpoint={run}", f"--model_base_path={base}"],
        "Checkpoint not found",
        run,
        absent=[base],
    )


def case_export_not_a_run_dir(w):
    base = w.path("serving")
    return Case(
        "export.py",
        [f"--checkpoint={w.data_dir}", f"--model_base_path={base}"],
        "No checkpoint found",
        w.data_dir,
        absent=[base],
    )


def case_export_no_model_base_path(w):
    return Case(
        "export.py",
        [f"--checkpoint={w.run_dir}"],
        "--model_base_path is required",
        "--model_base_path",
    )


def case_export_version_exists(w):
    base = w.path("serving")
    os.makedirs(os.path.join(base, "1"))
    w.file("serving/1/saved_model.pb", "the previous export")
    return Case(
        "export.py",
        [f"--checkpoint={w.run_dir}", f"--model_base_path={base}", "--version=1"],
        "already exists",
        os.path.join(base, "1"),
        protect=[base],
    )


def case_export_model_base_path_is_file(w):
    base = w.file("serving")
    return Case(
        "export.py",
        [f"--checkpoint={w.run_dir}", f"--model_base_path={base}"],
        "exists and is not a directory",
        base,
        protect=[base],
    )


def case_export_disk_full(w):
    base = w.path("exports", "serving")
    return Case(
        "export.py",
        [f"--checkpoint={w.run_dir}", f"--model_base_path={base}"],
        "File too large",
        base,
        absent=[w.path("exports")],
        fsize=300_000,
    )


# === predict.py ===
def _predict(w, model, inputs, *extra):
    return [f"--model={model}", f"--input_dir={inputs}", f"--output_dir={w.path('out')}", *extra]


def case_predict_truncated_checkpoint(w):
    run, photos = w.run(), w.photos(a_dot_png=png_bytes())
    truncate(checkpoint_data(run), 0.5)
    return Case(
        "predict.py",
        _predict(w, run, photos),
        "checkpoint",
        os.path.join(run, "checkpoints", "ckpt-1"),
        absent=[w.path("out")],
        protect=[run],
    )


def case_predict_model_missing(w):
    model, photos = w.path("nowhere"), w.photos(a_dot_png=png_bytes())
    return Case(
        "predict.py", _predict(w, model, photos), "does not exist", model, absent=[w.path("out")]
    )


def case_predict_preset_truncated_weights(w):
    from mtsyn_tf.models import MultiTaskNet  # TensorFlow is loaded: the run was trained

    preset = MultiTaskNet.from_preset(w.run_dir).save_to_preset(w.path("preset"))
    weights = os.path.join(preset, "model.weights.h5")
    truncate(weights, 0.5)
    return Case(
        "predict.py",
        _predict(w, preset, w.photos(a_dot_png=png_bytes())),
        "Corrupt or unreadable model.weights.h5",
        weights,
        absent=[w.path("out")],
        protect=[preset],
    )


def case_predict_input_missing(w):
    photos = w.path("nowhere")
    return Case(
        "predict.py",
        _predict(w, w.run_dir, photos),
        "does not exist",
        photos,
        absent=[w.path("out")],
    )


def case_predict_input_empty(w):
    photos = w.path("empty")
    os.makedirs(photos)
    return Case(
        "predict.py", _predict(w, w.run_dir, photos), "No images", photos, absent=[w.path("out")]
    )


def case_predict_text_renamed_jpg(w):
    photos = w.photos(a_dot_jpg=b"this is a text file\n")
    return Case(
        "predict.py",
        _predict(w, w.run_dir, photos),
        "Cannot decode image file",
        os.path.join(photos, "a.jpg"),
        absent=[w.path("out")],
        protect=[photos],
    )


def case_predict_output_below_file(w):
    photos, parent = w.photos(a_dot_png=png_bytes()), w.file("outputs")
    args = [f"--model={w.run_dir}", f"--input_dir={photos}", f"--output_dir={parent}/x"]
    return Case("predict.py", args, "is a file, not a directory", parent, protect=[parent])


def case_predict_output_readonly(w):
    photos, out = w.photos(a_dot_png=png_bytes()), os.path.join(w.readonly(), "out")
    args = [f"--model={w.run_dir}", f"--input_dir={photos}", f"--output_dir={out}"]
    return Case("predict.py", args, "is not writable", out, absent=[out])


def case_predict_batch_size_zero(w):
    photos = w.photos(a_dot_png=png_bytes())
    return Case(
        "predict.py",
        _predict(w, w.run_dir, photos, "--batch_size=0"),
        "--batch_size must be >= 1",
        "--batch_size",
        absent=[w.path("out")],
    )


def case_predict_disk_full(w):
    photos = w.photos(a_dot_png=png_bytes(64, 64))
    return Case(
        "predict.py",
        _predict(w, w.run_dir, photos),
        "File too large",
        w.path("out"),
        absent=[w.path("out")],
        fsize=2_000,
    )


CASES = {
    name[len("case_") :]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")
}
# render.py and demo.py cases run before anything imports TensorFlow (DrJit after TF crashes).
ORDER = sorted(CASES, key=lambda c: (not c.startswith(("render", "demo")), c))


# === Building the corpus (runs inside tests/scripts/run_cases.py) ===
def snapshot(path: str) -> dict:
    """{relative path: sha256} of every file under ``path`` (or of the file itself)."""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return {".": hashlib.sha256(f.read()).hexdigest()}
    out = {}
    for root, dirs, files in os.walk(path):
        for name in dirs:
            out[os.path.relpath(os.path.join(root, name), path) + "/"] = "dir"
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = hashlib.sha256(f.read()).hexdigest()
    return out


def prepare(
    root: str, readonly_dir: str | None, only: list | None = None, reuse: str | None = None
) -> list:
    """Tiny data, then a real (one-step) training run whose checkpoint the cases damage.

    ``only`` restricts the corpus to some ids, and ``reuse`` (the root of an earlier
    corpus) copies its data and run instead of training again: for quick mutation checks.
    """
    from tests.conftest import write_tiny_synthetic_dataset

    data = os.path.join(root, "shared", "data")
    run = os.path.join(root, "shared", "run")
    build = {
        "call": "tests.scripts.bad_input_cases:build_cases",
        "kwargs": {
            "root": root,
            "data": data,
            "run": run,
            "readonly_dir": readonly_dir,
            "only": only,
        },
    }
    if reuse:
        shutil.copytree(os.path.join(reuse, "shared"), os.path.join(root, "shared"))
        return [build]
    write_tiny_synthetic_dataset(data)
    return [{"id": "ok_train", "script": "train.py", "args": train_args(None, data, run)}, build]


def build_cases(
    root: str, data: str, run: str, readonly_dir: str | None, only: list | None = None
) -> list:
    """Builds every case's input; writes ``<root>/spec.json``; returns the script steps."""
    spec, steps = {}, []
    # Positive control: the same flags resume the finished run (no refusal, exit 0).
    if only is None or "ok_resume_same_flags" in only:
        steps.append(
            {
                "id": "ok_resume_same_flags",
                "script": "train.py",
                "args": train_args(None, data, run),
            }
        )
    for case_id in [c for c in ORDER if only is None or c in only]:
        w = Workspace(os.path.join(root, "cases", case_id), data, run, readonly_dir)
        try:
            case = CASES[case_id](w)
        except BaseException as err:  # noqa: BLE001 - pytest.skip (no read-only dir) or a bug
            spec[case_id] = {"skipped": f"{type(err).__name__}: {err}"}
            continue
        spec[case_id] = {
            **dataclasses.asdict(case),
            "root": w.root,
            "snapshots": {p: snapshot(p) for p in case.protect},
        }
        steps.append(
            {
                "id": case_id,
                "script": case.script,
                "args": case.args,
                "env": case.env,
                "fsize": case.fsize,
            }
        )
    with open(os.path.join(root, "spec.json"), "w") as f:
        json.dump(spec, f, indent=1)
    return steps
