"""The paper_alexnet training step in PyTorch: the yardstick for ``train_step.py``.

A PyTorch implementation of the same iteration mtsyn_tf's trainer runs (SPEC §1–3,
Algorithm 1), written the way the reference code (a PyTorch project) computes it:

* the network: AlexNet-BN conv1…conv5, pool5 stride 1, dilated conv fc6 (6×6, dilation 2,
  pad 5) and 1×1 fc7, both with BN + ReLU; three transposed-conv heads (contour, depth,
  normals: 3×3 s2 → 3×3 s2 → 5×5 s2 → 3×3 s2 output, width 64, BN + ReLU); the patch
  discriminator D on conv5 (3×3 s2 256 → 1×1 512 → 1×1 1, BN + LeakyReLU 0.2);
* stage 1, D frozen: forward the synthetic batch, HED-balanced contour BCE, scale-invariant
  log-depth, cosine normals and the adversarial BCE of D(conv5) → "real"; Adam (lr 1e-3,
  β1 0.5) on B and H;
* stage 2, B frozen: the real batch forward up to conv5 only (no gradient), D on the
  history-pooled synthetic features and on the real ones; SGD (momentum 0.9, weight decay
  5e-4) on D — the reference's optimizers.

Only torch and numpy are imported: it runs in its own virtualenv (``make bench-torch``
creates ``.venv-torch``); torch is never a dependency of mtsyn_tf.

    .venv-torch/bin/python benchmarks/torch_reference_step.py --batch=8 --threads=2
    .venv-torch/bin/python benchmarks/torch_reference_step.py --serve   # for compare_train_step.py

With ``--serve`` it builds the step once, then answers lines on stdin: ``time STEPS`` →
one JSON line ``{"seconds_per_step": …}`` on stdout; ``quit`` ends it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

WIDTHS = {"conv1": 96, "conv2": 256, "conv3": 384, "conv4": 384, "conv5": 256, "fc": 4096}
TASK_CHANNELS = {"contour": 1, "depth": 1, "normals": 3}
LOSS_WEIGHTS = {"contour": 1.0, "depth": 5.0, "normals": 10.0, "adversarial": 0.05}


# ---------------------------------------------------------------------- network
def conv_bn(cin, cout, k, stride=1, pad=0, dilation=1, transpose=False, act="relu"):
    conv_cls = nn.ConvTranspose2d if transpose else nn.Conv2d
    layers = [
        conv_cls(cin, cout, k, stride=stride, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout, momentum=0.1, eps=1e-5),
        nn.ReLU(inplace=True) if act == "relu" else nn.LeakyReLU(0.2, inplace=True),
    ]
    return nn.Sequential(*layers)


class Base(nn.Module):
    """conv1…conv5 (B), then fc6/fc7 (the bottleneck); ``forward`` also returns conv5."""

    def __init__(self):
        super().__init__()
        w = WIDTHS
        self.to_conv5 = nn.Sequential(
            conv_bn(3, w["conv1"], 11, stride=4),
            nn.MaxPool2d(3, 2),
            conv_bn(w["conv1"], w["conv2"], 5, pad=2),
            nn.MaxPool2d(3, 2),
            conv_bn(w["conv2"], w["conv3"], 3, pad=1),
            conv_bn(w["conv3"], w["conv4"], 3, pad=1),
            conv_bn(w["conv4"], w["conv5"], 3, pad=1),
        )
        self.bottleneck = nn.Sequential(
            nn.MaxPool2d(3, 1, padding=1),
            conv_bn(w["conv5"], w["fc"], 6, pad=5, dilation=2),
            conv_bn(w["fc"], w["fc"], 1),
        )

    def forward(self, x):
        conv5 = self.to_conv5(x - 0.5)
        return conv5, self.bottleneck(conv5)


class Head(nn.Module):
    def __init__(self, channels: int, width: int = 64):
        super().__init__()
        self.layers = nn.Sequential(
            conv_bn(WIDTHS["fc"], width, 3, stride=2, transpose=True),
            conv_bn(width, width, 3, stride=2, transpose=True),
            conv_bn(width, width, 5, stride=2, transpose=True),
            nn.ConvTranspose2d(width, channels, 3, stride=2),
        )

    def forward(self, x):
        return self.layers(x)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            conv_bn(WIDTHS["conv5"], 256, 3, stride=2, act="lrelu"),
            conv_bn(256, 512, 1, act="lrelu"),
            nn.Conv2d(512, 1, 1),
        )

    def forward(self, x):
        return self.layers(x)


class HistoryPool:
    """CycleGAN's image pool on feature maps: each query swaps with probability 0.5."""

    def __init__(self, size: int = 128):
        self.size, self.items = size, None

    def query(self, features):
        if self.items is None:
            self.items = features.clone()
            return features
        if self.items.shape[0] < self.size:
            self.items = torch.cat([self.items, features])[: self.size]
            return features
        swap = torch.rand(features.shape[0]) < 0.5
        slots = torch.randint(0, self.items.shape[0], (features.shape[0],))
        out = features.clone()
        out[swap] = self.items[slots[swap]]
        self.items[slots[swap]] = features[swap]
        return out


# ---------------------------------------------------------------------- losses
def contour_loss(logits, target):
    n_pix = target[0].numel()
    beta = 1.0 - target.sum(dim=(1, 2, 3), keepdim=True) / n_pix
    weight = target * beta + (1.0 - target) * (1.0 - beta)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (weight * bce).sum(dim=(1, 2, 3)) / n_pix


def depth_loss(log_pred, depth, valid):
    d = (log_pred - torch.log(depth.clamp_min(1e-6))) * valid
    n = valid.sum(dim=(1, 2, 3)).clamp_min(1.0)
    return (d * d).sum(dim=(1, 2, 3)) / n - 0.5 * (d.sum(dim=(1, 2, 3)) / n) ** 2


def normals_loss(pred, normals, valid):
    cos = (F.normalize(pred, dim=1) * normals).sum(dim=1, keepdim=True) * valid
    return -cos.sum(dim=(1, 2, 3)) / valid.sum(dim=(1, 2, 3)).clamp_min(1.0)


def patch_bce(logits, label: float):
    return F.binary_cross_entropy_with_logits(
        logits, torch.full_like(logits, label), reduction="none"
    ).mean(dim=(1, 2, 3))


# ---------------------------------------------------------------------- the step
class ReferenceStep:
    SYNTHETIC, REAL = 1.0, 0.0

    def __init__(self, batch: int, size: int = 227, seed: int = 0):
        torch.manual_seed(seed)
        self.base, self.disc = Base(), Discriminator()
        self.heads = nn.ModuleDict({t: Head(c) for t, c in TASK_CHANNELS.items()})
        bh = list(self.base.parameters()) + list(self.heads.parameters())
        self.opt_bh = torch.optim.Adam(bh, lr=1e-3, betas=(0.5, 0.999))
        self.opt_d = torch.optim.SGD(
            self.disc.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4
        )
        self.pool = HistoryPool()
        self.data = _random_batch(batch, size)
        for module in (self.base, self.heads, self.disc):
            module.train()

    def __call__(self):
        d = self.data
        # Stage 1: D frozen; B and H learn the tasks and to make synthetic look real.
        self.disc.requires_grad_(False)
        conv5, fc7 = self.base(d["image"])
        pred = {t: head(fc7) for t, head in self.heads.items()}
        w = LOSS_WEIGHTS
        total = (
            w["contour"] * contour_loss(pred["contour"], d["contour"])
            + w["depth"] * depth_loss(pred["depth"], d["depth"], d["valid"])
            + w["normals"] * normals_loss(pred["normals"], d["normals"], d["valid"])
            + w["adversarial"] * patch_bce(self.disc(conv5), self.REAL)
        )
        self.opt_bh.zero_grad(set_to_none=True)
        total.mean().backward()
        self.opt_bh.step()
        # Stage 2: B frozen; D tells pooled synthetic conv5 from real conv5.
        self.disc.requires_grad_(True)
        with torch.no_grad():
            z_y = self.base.to_conv5(d["real"] - 0.5)
        z_x = self.pool.query(conv5.detach())
        loss_d = patch_bce(self.disc(z_x), self.SYNTHETIC) + patch_bce(self.disc(z_y), self.REAL)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.mean().backward()
        self.opt_d.step()
        return float(total.mean()) + float(loss_d.mean())


def _random_batch(batch: int, size: int) -> dict:
    rng = np.random.default_rng(0)
    shape = (batch, 1, size, size)
    valid = (rng.random(shape) < 0.9).astype(np.float32)
    normals = rng.normal(size=(batch, 3, size, size)).astype(np.float32)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    data = {
        "image": rng.random((batch, 3, size, size), dtype=np.float32),
        "real": rng.random((batch, 3, size, size), dtype=np.float32),
        "depth": (rng.uniform(0.5, 8.0, shape) * valid).astype(np.float32) + (1 - valid),
        "normals": normals * valid,
        "contour": (rng.random(shape) < 0.1).astype(np.float32),
        "valid": valid,
    }
    return {k: torch.from_numpy(v) for k, v in data.items()}


def seconds_per_step(step, steps: int) -> float:
    return timed_steps(step, steps)["seconds_per_step"]


def timed_steps(step, steps: int) -> dict:
    """Wall and process-CPU seconds per step (CPU: all threads; see compare_train_step)."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    return {
        "seconds_per_step": (time.perf_counter() - start) / steps,
        "cpu_seconds_per_step": (time.process_time() - cpu) / steps,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--serve", action="store_true", help="answer 'time N' lines on stdin")
    args = parser.parse_args()
    if args.batch <= 0 or args.threads <= 0:
        parser.error(f"--batch and --threads must be > 0. Received: {args.batch}, {args.threads}")
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    step = ReferenceStep(args.batch)
    seconds_per_step(step, args.warmup)
    if not args.serve:
        s = seconds_per_step(step, args.steps)
        print(f"torch {torch.__version__} batch {args.batch}: {args.batch / s:.3f} img/s")
        return
    print(json.dumps({"ready": True, "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        command = line.split()
        if command[:1] == ["quit"]:
            break
        if command[:1] != ["time"] or len(command) != 2:
            print(json.dumps({"error": f"expected 'time N' or 'quit'. Received: {line!r}"}))
            continue
        print(json.dumps(timed_steps(step, int(command[1]))), flush=True)


if __name__ == "__main__":
    main()
