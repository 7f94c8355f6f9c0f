"""The run driver on two mirrored replicas trains the one-device run (same global batch).

``loop.train(strategy="mirrored")`` runs in a subprocess on two logical CPUs
(``mirrored_run.py``) with a per-replica batch of 1, and in a subprocess on one device
with a batch of 2: the same global batches (``epoch_loop.distribute_global_batches`` gives
replica r rows [r·b, (r+1)·b)), the same loop and the same callbacks. The settings are
those of the two-worker test (``test_multi_worker.py``): plain SGD at 1e-3, grayscale off,
a pool still filling, synced BatchNorm. The runs then compute the same 4 steps up to
float32 rounding (summation order; the synced variance E[x²] - E[x]²).

What rounding does to the weights (measured with TF_ENABLE_ONEDNN_OPTS=0 against a
float64 run of the same steps from the same weights on the same batches):

* A gradient that crosses a ReLU / leaky ReLU / max-pool on its way back from the loss
  is a discontinuous function of the activations. float32 rounding moves the BN outputs
  by ~1e-5..1e-4 and the few elements that close to 0 switch sides (a max-pool
  near-tie acts alike; not counted): at depth_head/deconv10, 2 of 408 608 elements flipped sign and made dL/d(BN output)
  differ from float64 by 20 % of its largest element (1.2e-5 without those 2). Every
  weight below such a kink inherits this: step 1's conv-kernel gradients differ from
  float64 by 0.5-3 % (max-norm) in *both* runs (one device: conv4 1.2 %, fc7 3.0 %;
  mirrored: 1.4 %, 0.6 %), and once the weights differ, the next steps flip more
  elements: 4-26 % per step at steps 2-4, again in both runs. After 4 steps the one-device
  float32 run is as far from the float64 run (conv5's kernel: 1.24x its epoch-2 update)
  as from the mirrored run (1.22x). This is the gap the previous 5x bound absorbed; it is
  rounding, not the strategy, and the losses (continuous) do not see it.
* Weights with no kink between them and the loss (each head's output convolution and
  D's last, d3) and the BatchNorm moving statistics (forward values, continuous in the
  weights) are well conditioned: float32 vs float64 per step within 2.3e-3 (normals
  output kernel) and mirrored vs one device within 8e-4 (outputs) / 2e-3 (statistics)
  of their epoch-2 update.
Not the cause (checked): per-replica BN statistics (unsynced, the reference's
DataParallel; README deviation table) change step 1's gradients by 60-150 % in the
kinked layers and 5-28 % in the output layers; gradient scaling (the output layers'
step-1 gradients agree with float64 to 1e-5); per-replica randomness (grayscale off, the
pool does not swap yet; step 1's losses are bit-identical); Adam (the runs use SGD).

The checks:

* Losses: within 1e-4 / 5e-4 of max(|loss|, 1) (``assert_history_close``).
* Well-conditioned variables, each within ``TIGHT`` of its epoch-2 update (the
  one-device run's ckpt-2 - ckpt-1) plus 4 ulp. Estimate: the kinked layers' weights
  differ by ~30 % of a step's update; a step moves a layer's activations by about
  lr·|g|/|w| ≈ 1e-3·0.03/0.1 = 3e-4 relative, so the activations reaching the
  well-conditioned variables differ by ≲ 1e-4 relative and their gradients by as
  much; accumulated over the 4 steps with lr 1e-3, 1e-3, 1e-4, 1e-4 (the schedule's
  drops at 60 % / 90 % of 4 steps; the epoch-2 update u2 is 2 steps at 1e-4, so the
  run's whole change is ~11 u2) that is ≲ 2e-3 u2 per run, 4e-3 u2 between two runs.
  Bound 2e-2: 5x the estimate, for other ISAs' summation orders. Measured worst:
  1.8e-3 / 8.2e-4 / 1.7e-3 u2 with oneDNN off / on / on restricted to AVX2. Mutations
  (worst well-conditioned error / u2): losses divided by the per-replica batch 13.8;
  replica 1's gradients dropped 7.6, only its D gradients 1.7 (the losses catch that one
  only just, at 1.3x their bound; the loose bound misses it); BatchNorm not synced 2.4.
* Every other variable within ``LOOSE`` of its epoch-2 update: the kink noise. Two
  float32 runs differ per step by up to 2 x 26 % of a step's update (the worst
  float32-vs-float64 step above), over ~11 u2 of change: 5.7 u2; bound 6 (measured
  1.22 / 0.24 / 3.48 with oneDNN off / on / AVX2). Only a gross error fails this one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from test_multi_worker import (  # noqa: E402 - sibling test module (rootdir imports)
    assert_history_close,
    tensorboard_tags,
)

from tests.trainer.weight_checks import LOOSE, PRESET, TIGHT, assert_weights_close

HELPER = os.path.join(os.path.dirname(__file__), "mirrored_run.py")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fields(data_dir, workdir, batch_size, **extra):
    return dict(
        workdir=str(workdir),
        synthetic_dir=data_dir,
        preset=PRESET,
        batch_size=batch_size,
        epochs=2,
        steps_per_epoch=2,
        trainer={"pool_size": 8, "min_edge_pixels": 0, "grayscale": False},
        optimizer="sgd",
        learning_rate=0.001,  # not chaotic: see test_multi_worker.py's docstring
        eval_batches=1,
        verbose=0,
        **extra,
    )


def _run(fields) -> dict:
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, HELPER, json.dumps(fields)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_mirrored_replicas_train_the_one_device_run(tiny_synthetic_dir, tmp_path):
    # Both in the same two-logical-CPU process setup (thread pools included); "auto" on
    # CPUs is TF's default strategy, one device.
    mirrored = _run(_fields(tiny_synthetic_dir, tmp_path / "mirrored", 1, strategy="mirrored"))
    single = _run(_fields(tiny_synthetic_dir, tmp_path / "single", 2, strategy="auto"))

    replicas = [
        json.loads((tmp_path / run / "config.json").read_text())["num_replicas"]
        for run in ("mirrored", "single")
    ]
    assert replicas == [2, 1]
    assert (mirrored["initial_epoch"], mirrored["steps_run"]) == (0, 4)
    assert mirrored.keys() == single.keys()  # eval and the SavedModel on both
    assert tensorboard_tags(tmp_path / "mirrored") == tensorboard_tags(tmp_path / "single")
    assert_history_close(tmp_path / "mirrored", tmp_path / "single")

    assert_weights_close(tmp_path / "mirrored", tmp_path / "single", TIGHT, LOOSE)
