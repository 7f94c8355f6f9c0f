"""What every named experiment shares, at the two scales.

``paper``: the paper's and its reference code's recipe (SPEC §3; Table 4 "#data" 0.5M):
AlexNet-BN at 227², batch 28 per GPU on 8 GPUs (global 224), 30 epochs, B and H on Adam
1e-3 β1 0.5, D on SGD 1e-3 momentum 0.9 weight decay 5e-4, all ×0.1 at epochs 18 and 27;
Places365 as the real domain. ``steps_per_epoch`` is the number of images over the global
batch of 224: on fewer GPUs reach that batch with ``grad_accum_steps``.

``demo``: the same code and recipe on the ``small`` preset and the embedded data
(``scripts/demo.py`` renders ``workspace/data/synthetic/demo``), a few minutes of training
on a 2-core CPU, so a grid of experiments × seeds fits in an hour (``scripts/ablate.py``).
"""

from __future__ import annotations

import math

from mtsyn_tf.trainer.config import RunConfig, TrainerConfig

SCALES = ("paper", "demo")
# Reference code: 28 images per GPU on 8 GPUs.
PAPER_BATCH_PER_REPLICA = 28
PAPER_REPLICAS = 8
PAPER_IMAGES = 500_000  # Table 4 "#data" of rows 1-9
PAPER_IMAGES_LARGE = 1_500_000  # Table 4 row 10, the final model

# Demo: 3 × 60 steps of batch 8 on the small preset. Measured on a shared 2-core CPU (load
# 5-20): ~1 s per step, 191 s of training for demo/multitask_da_conv5 (130 s for demo/depth);
# the whole DA run (import, build, train, evaluate) used 111 s of CPU time.
DEMO_BATCH = 8
DEMO_EPOCHS = 3
DEMO_STEPS_PER_EPOCH = 60


def steps_per_epoch(images: int) -> int:
    """One pass over ``images`` at the reference's global batch."""
    return math.ceil(images / (PAPER_BATCH_PER_REPLICA * PAPER_REPLICAS))


def base(scale: str, name: str, *, trainer: TrainerConfig, images: int = PAPER_IMAGES):
    """The shared settings of experiment ``name`` at ``scale`` with its ``trainer``."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}. Received: scale={scale!r}")
    workdir = f"workspace/runs/{scale}_{name}"
    if scale == "paper":
        trainer.min_edge_pixels = 350  # reference: images with fewer contour pixels resampled
        return RunConfig(
            workdir=workdir,
            synthetic_dir="workspace/data/synthetic/paper",
            real_source="places365",
            preset="paper_alexnet",
            trainer=trainer,
            batch_size=PAPER_BATCH_PER_REPLICA,
            epochs=30,
            steps_per_epoch=steps_per_epoch(images),
            learning_rate=1e-3,
            beta_1=0.5,
            lr_drops=(0.6, 0.9),  # epochs 18 and 27 of 30
            optimizer="adam",
            disc_optimizer="sgd",
            disc_momentum=0.9,
            disc_weight_decay=5e-4,
        )
    # The renders are simple rooms; 350 contour pixels (the reference's cut, for SUNCG)
    # would drop a large share of them (as scripts/demo.py).
    trainer.min_edge_pixels = 100
    return RunConfig(
        workdir=workdir,
        synthetic_dir="workspace/data/synthetic/demo",
        real_source="embedded",
        preset="small",
        trainer=trainer,
        batch_size=DEMO_BATCH,
        epochs=DEMO_EPOCHS,
        steps_per_epoch=DEMO_STEPS_PER_EPOCH,
        learning_rate=1e-3,
        beta_1=0.5,
        lr_drops=(0.6, 0.9),
        image_summaries=False,
        verbose=2,
    )
