"""Folds an inference-mode BatchNorm into the convolution before it.

BN(conv(x)) = γ·(W*x + b − μ)/√(σ² + ε) + β = (s·W)*x + (s·(b − μ) + β), s = γ/√(σ² + ε),
per output channel. The result equals the original to float rounding for any input, which
is what a standard (BN-free) AlexNet layer needs.
"""

from __future__ import annotations

import numpy as np


def fold_batchnorm(kernel, bias, gamma, beta, moving_mean, moving_variance, epsilon):
    """Returns (kernel, bias) of the conv equivalent to conv → BN; kernel's last axis = out."""
    kernel = np.asarray(kernel, np.float64)
    out = kernel.shape[-1]
    bias = np.zeros(out) if bias is None else np.asarray(bias, np.float64)
    gamma = np.ones(out) if gamma is None else np.asarray(gamma, np.float64)
    beta = np.zeros(out) if beta is None else np.asarray(beta, np.float64)
    for name, value in (
        ("gamma", gamma),
        ("beta", beta),
        ("moving_mean", moving_mean),
        ("moving_variance", moving_variance),
        ("bias", bias),
    ):
        if np.shape(value) != (out,):
            raise ValueError(
                f"{name} must have one entry per output channel ({out}). Received shape {np.shape(value)}"
            )
    scale = gamma / np.sqrt(np.asarray(moving_variance, np.float64) + epsilon)
    return (
        (kernel * scale).astype(np.float32),
        (scale * (bias - np.asarray(moving_mean, np.float64)) + beta).astype(np.float32),
    )


def fold_conv_bn_block(block) -> tuple[np.ndarray, np.ndarray]:
    """(kernel, bias) of a ``ConvBNAct`` block with its BatchNorm folded in (pre-activation)."""
    conv, bn = block.conv, block.bn
    bias = conv.bias.numpy() if conv.use_bias else None
    if bn is None:
        kernel = conv.kernel.numpy()
        return kernel, (bias if bias is not None else np.zeros(kernel.shape[-1], np.float32))
    return fold_batchnorm(
        conv.kernel.numpy(),
        bias,
        bn.gamma.numpy() if bn.scale else None,
        bn.beta.numpy() if bn.center else None,
        bn.moving_mean.numpy(),
        bn.moving_variance.numpy(),
        bn.epsilon,
    )
