"""Building blocks shared by the backbones, heads and discriminators."""

from __future__ import annotations

import keras
from keras import layers, ops

from mtsyn_tf.models.batch_norm import BatchNorm

_ACTIVATIONS = ("relu", "leaky_relu", "linear")
_CONV_IMPLS = ("auto", "conv", "matmul")


def _activation_layer(activation: str, name: str):
    if activation == "relu":
        return layers.ReLU(name=f"{name}_relu")
    if activation == "leaky_relu":
        # The discriminator's slope (SPEC §2: LeakyReLU 0.2).
        return layers.LeakyReLU(negative_slope=0.2, name=f"{name}_lrelu")
    if activation == "linear":
        return None
    raise ValueError(
        f"activation must be one of {_ACTIVATIONS}. Received: activation={activation!r}"
    )


def conv_transpose_as_matmul(conv, x):
    """``conv(x)`` for a VALID ``Conv2DTranspose`` (no dilation) as matmul + col2im.

    Each input pixel's contribution, x[b, i, j, :] @ K[ky, kx, :, :]ᵀ for every tap, is one
    matmul, [B·H·W, C] × [C, k·k·F] (large and dense where C is: the heads' 4096-wide
    Deconv8); col2im then adds tap (ky, kx) of pixel (i, j) into output (s·i + ky, s·j + kx).
    It splits the taps by phase (ky mod s, kx mod s): within a phase the taps land on the
    same output sub-grid, shifted by whole pixels, so each phase is a sum of padded
    slices, and the s·s phases interleave into the output with a reshape. Same kernel
    variable as ``conv`` (Keras layout [k, k, F, C]); only the order of the float32 sums
    differs from the transposed convolution.
    """
    k, s, f = conv.kernel_size[0], conv.strides[0], conv.filters
    if conv.kernel_size[0] != conv.kernel_size[1] or conv.strides[0] != conv.strides[1]:
        raise ValueError(
            f"conv_transpose_as_matmul needs square kernels and strides. Received: "
            f"kernel_size={conv.kernel_size}, strides={conv.strides}"
        )
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    kernel = ops.cast(ops.transpose(conv.kernel, (3, 0, 1, 2)), x.dtype)  # [C, ky, kx, F]
    cols = ops.matmul(ops.reshape(x, (-1, c)), ops.reshape(kernel, (c, k * k * f)))
    # One [B, H, W, F] tensor per tap (ky·k + kx). Unstacking (gradient: one stack) rather
    # than indexing cols per tap: each strided slice's gradient writes a zero tensor the
    # size of all of cols, k·k times over (a third of the `small` step before).
    taps = ops.unstack(ops.reshape(cols, (-1, h, w, k * k, f)), num=k * k, axis=3)
    taps_per_phase = -(-k // s)  # ceil(k / s): taps of phase 0
    hp, wp = h + taps_per_phase - 1, w + taps_per_phase - 1
    phases = []
    for ry in range(s):
        for rx in range(s):
            phase = None
            for qy in range(len(range(ry, k, s))):
                for qx in range(len(range(rx, k, s))):
                    piece = taps[(s * qy + ry) * k + s * qx + rx]
                    pads = [[0, 0], [qy, hp - h - qy], [qx, wp - w - qx], [0, 0]]
                    piece = ops.pad(piece, pads)
                    phase = piece if phase is None else phase + piece
            if phase is None:  # k < s: no tap lands on this phase
                zeros = ops.zeros_like(taps[0])
                phase = ops.pad(zeros, [[0, 0], [0, hp - h], [0, wp - w], [0, 0]])
            phases.append(phase)
    # [s·s, B, hp, wp, F] → [B, hp, s, wp, s, F] → [B, hp·s, wp·s, F]: y[s·i + ry, s·j + rx].
    y = ops.reshape(ops.stack(phases), (s, s, -1, hp, wp, f))
    y = ops.reshape(ops.transpose(y, (2, 3, 0, 4, 1, 5)), (-1, hp * s, wp * s, f))
    _, out_h, out_w, _ = conv.compute_output_shape(x.shape)  # (h - 1)·s + k for k >= s
    y = ops.slice(y, (0, 0, 0, 0), (-1, out_h, out_w, f))  # gradient: a pad
    if conv.use_bias:
        y = y + ops.cast(conv.bias, y.dtype)
    return y


def transpose_matmul_pays(kernel_size: int, filters: int, channels: int) -> bool:
    """Whether ``conv_transpose_as_matmul`` beats the transposed convolution for a layer.

    The form materialises k·k·F columns per input pixel: cheap where that is no more than
    the input's C channels (a wide layer feeding a narrow one: the heads' 4096 → 64
    Deconv8 and 64 → 1…3 output, where oneDNN's transposed convolution ran at 5–60 % of
    its matmul rate), and a memory-bound detour where it is more (64 → 64 5×5: 25× the
    input; the `small` heads' 16 → 3 normals output: 27 columns from 16 channels took
    1.2–1.9× the transposed convolution's time, forward + backward, oneDNN on and off).
    """
    return kernel_size * kernel_size * filters <= channels


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class ConvBNAct(layers.Layer):
    """Convolution (or transposed convolution) → BatchNorm → activation.

    The convolution has no bias: BatchNorm's beta plays that role (and is folded back into
    a bias when converting to a standard AlexNet). Explicit integer ``padding`` is applied
    with ``ZeroPadding2D`` so layer tables with Caffe-style padding map one to one.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int,
        strides: int = 1,
        padding: int | str = 0,
        dilation_rate: int = 1,
        activation: str = "relu",
        transpose: bool = False,
        use_bn: bool = True,
        sync_batchnorm: bool = False,
        conv_impl: str = "auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if filters <= 0 or kernel_size <= 0 or strides <= 0:
            raise ValueError(
                f"filters, kernel_size and strides must be positive. Received: "
                f"filters={filters}, kernel_size={kernel_size}, strides={strides}"
            )
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding
        self.dilation_rate = dilation_rate
        self.activation = activation
        self.transpose = transpose
        self.use_bn = use_bn
        self.sync_batchnorm = sync_batchnorm
        if conv_impl not in _CONV_IMPLS:
            raise ValueError(
                f"conv_impl must be one of {_CONV_IMPLS}. Received: conv_impl={conv_impl!r}"
            )
        if transpose:
            matmul_ok = padding != "same" and dilation_rate == 1
        else:
            matmul_ok = strides == 1 and padding != "same"
        if conv_impl == "matmul" and not matmul_ok:
            raise ValueError(
                "conv_impl='matmul' needs a stride-1 convolution, or a transposed one without "
                "dilation, and no padding='same'. Received: "
                f"strides={strides}, padding={padding!r}, dilation_rate={dilation_rate}, "
                f"transpose={transpose}"
            )
        self.conv_impl = conv_impl
        # Not a setting (no get_config): the matmul form skips the padding's rows unless a
        # benchmark counting nominal FLOPs turns it off (see ``_conv_as_matmul``).
        self.skip_padding_rows = True
        # "auto": where the matmul form is the faster one (measured, README "Performance"):
        # 1×1 and dilated convolutions (Keras sends dilated ones through space_to_batch);
        # transposed convolutions are decided per input width in ``call``.
        self.use_matmul = conv_impl == "matmul" or (
            conv_impl == "auto"
            and matmul_ok
            and (transpose or kernel_size == 1 or dilation_rate > 1)
        )

        # === Layers ===
        self.pad = None
        if isinstance(padding, int) and padding > 0:
            self.pad = layers.ZeroPadding2D(padding, name=f"{self.name}_pad")
        keras_padding = padding if isinstance(padding, str) else "valid"
        conv_cls = layers.Conv2DTranspose if transpose else layers.Conv2D
        self.conv = conv_cls(
            filters,
            kernel_size,
            strides=strides,
            padding=keras_padding,
            dilation_rate=dilation_rate,
            use_bias=not use_bn,
            kernel_initializer="he_normal" if activation != "linear" else "glorot_uniform",
            name=f"{self.name}_conv",
        )
        self.bn = (
            BatchNorm(
                momentum=0.9, epsilon=1e-5, synchronized=sync_batchnorm, name=f"{self.name}_bn"
            )
            if use_bn
            else None
        )
        self.act = _activation_layer(activation, self.name)

    def build(self, input_shape):
        shape = input_shape
        if self.pad is not None:
            self.pad.build(shape)
            shape = self.pad.compute_output_shape(shape)
        self.conv.build(shape)
        shape = self.conv.compute_output_shape(shape)
        if self.bn is not None:
            self.bn.build(shape)
        self.built = True

    def call(self, x, training=None, return_pre_activation=False):
        """The activation's output; with ``return_pre_activation``, ``(output, pre)``.

        ``pre`` is the BatchNorm output before the activation: the feature the reference
        code feeds its discriminator ("before relu/pooling, following ganhacks").
        """
        # The patches need static spatial sizes; an input of unknown size takes Conv2D.
        static = x.shape[1] is not None and x.shape[2] is not None
        if self.use_matmul and static and not self.transpose:
            x = self._conv_as_matmul(x)  # pads itself: it skips the padding's rows
        else:
            if self.pad is not None:
                x = self.pad(x)
            if self.use_matmul and static and self._transpose_matmul_pays(x.shape[-1]):
                x = conv_transpose_as_matmul(self.conv, x)
            else:
                x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x, training=training)
        pre = x
        if self.act is not None:
            x = self.act(x)
        return (x, pre) if return_pre_activation else x

    def _transpose_matmul_pays(self, channels) -> bool:
        """Whether this transposed convolution takes the matmul form (``conv_impl="matmul"``
        forces it; see ``transpose_matmul_pays``)."""
        if self.conv_impl == "matmul":
            return True
        return transpose_matmul_pays(self.kernel_size, self.filters, channels)

    def _conv_as_matmul(self, x):
        """``self.conv`` (stride 1) on ``x`` zero-padded by ``self.padding``, as patches × the
        kernel reshaped to ``[k·C, F]`` per kernel row, with the same variables.

        Output row i's kernel row ky reads input row i + d·ky − p, which for some rows is
        padding: its products are zeros. So the form runs one matmul per kernel row, over
        only the output rows where that kernel row lands inside the input, and adds the
        results, each zero-padded back to the full height (a pad's gradient is a slice).
        For fc6 (13×13 in, 6×6 dilated 2, padding 5) that is 60 of the 78 (i, ky) pairs:
        23 % of its multiply-adds, forward and both gradients, skipped. The columns keep
        their zero padding: splitting them as well (one matmul per column class and kernel
        row, a kernel slice each) cost more in copies than it saved (1.12–1.18× the time).
        ``skip_padding_rows = False`` multiplies the padding rows too (one dense im2col
        matmul): the nominal FLOPs that benchmarks count (``benchmarks/train_step.py``).
        """
        k, d, f = self.kernel_size, self.dilation_rate, self.filters
        p = self.padding if isinstance(self.padding, int) else 0
        h, w, c = x.shape[1], x.shape[2], x.shape[3]
        out_h, out_w = h + 2 * p - d * (k - 1), w + 2 * p - d * (k - 1)
        kernel = ops.cast(self.conv.kernel, x.dtype)  # [k, k, C, F]
        if not self.skip_padding_rows or p == 0 or k == 1:
            if p:
                x = ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
            patches = self._patches(x, 0, out_h, out_w, range(k))
            y = ops.matmul(patches, ops.reshape(kernel, (k * k * c, f)))
            y = ops.reshape(y, (-1, out_h, out_w, f))
        else:
            x = ops.pad(x, [[0, 0], [0, 0], [p, p], [0, 0]])  # the columns' padding only
            # Kernel rows unstacked (gradient: one stack), not sliced (gradient: a pad of
            # the whole kernel per slice, then their sum).
            # Under mixed precision the partial results are summed in float32 and rounded
            # once, as the one matmul's float32 accumulator did, not once per add.
            dtype = keras.backend.standardize_dtype(x.dtype)
            sum_dtype = "float32" if dtype in ("float16", "bfloat16") else dtype
            y = None
            for ky, kernel_row in enumerate(ops.unstack(kernel, num=k, axis=0)):
                first = max(0, p - d * ky)  # the output rows whose input row is not padding
                last = min(out_h - 1, h - 1 + p - d * ky)
                if last < first:
                    continue
                rows = last - first + 1
                patches = self._patches(x, first + d * ky - p, rows, out_w, [0])
                z = ops.matmul(patches, ops.reshape(kernel_row, (k * c, f)))
                z = ops.reshape(z, (-1, rows, out_w, f))
                if rows < out_h:
                    z = ops.pad(z, [[0, 0], [first, out_h - 1 - last], [0, 0], [0, 0]])
                z = ops.cast(z, sum_dtype)
                y = z if y is None else y + z
            if y is None:  # padding so wide that no tap reaches the input
                y = ops.zeros((ops.shape(x)[0], out_h, out_w, f), x.dtype)
            y = ops.cast(y, x.dtype)
        if self.conv.use_bias:
            y = y + ops.cast(self.conv.bias, y.dtype)
        return y

    def _patches(self, x, row, rows, cols, kernel_rows):
        """im2col rows ``[B·rows·cols, len(kernel_rows)·k·C]`` of ``x`` (already padded) for
        output rows ``row…row + rows − 1``: channel index (ky·k + kx)·C + c, the row-major
        flattening of the kernel's ``[k, k, C, F]`` (ky counted within ``kernel_rows``)."""
        k, d, c = self.kernel_size, self.dilation_rate, x.shape[-1]
        # ops.slice, not x[...]: its gradient is a pad, a strided slice's a scatter into
        # zeros several times slower.
        whole = (row, rows, cols) == (0, x.shape[1], x.shape[2])  # a 1×1 kernel's one tap
        taps = [
            x
            if whole and k == 1
            else ops.slice(x, (0, row + d * ky, d * kx, 0), (-1, rows, cols, c))
            for ky in kernel_rows
            for kx in range(k)
        ]
        patches = taps[0] if len(taps) == 1 else ops.concatenate(taps, axis=-1)
        return ops.reshape(patches, (-1, patches.shape[-1]))

    def compute_output_shape(self, input_shape):
        shape = input_shape
        if self.pad is not None:
            shape = self.pad.compute_output_shape(shape)
        return self.conv.compute_output_shape(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            activation=self.activation,
            transpose=self.transpose,
            use_bn=self.use_bn,
            sync_batchnorm=self.sync_batchnorm,
            conv_impl=self.conv_impl,
        )
        return config
