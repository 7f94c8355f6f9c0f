"""Where the training step's time goes: per layer and per op kind, beside each layer's FLOPs.

Traces ``--steps`` steps of the run's trainer (``train_step._build``) with
``tf.profiler.experimental``, reads the XPlane file it writes (TensorFlow's own
``xplane_pb2``; no TensorBoard plugin needed) and sums the duration of every executed
TensorFlow op (forward and gradient) into

* its layer: the Keras layer path in the op's name (``conv1``, ``fc6``, ``deconv8`` of
  each head, ``d1``, ``pool5``, the losses, the optimizer updates, …);
* its kind: ``matmul/conv`` (Conv2D*, MatMul, and oneDNN's _Mkl/_Fused versions),
  ``batchnorm`` (the moments/normalisation graph or FusedBatchNorm*), ``elementwise``
  (activations, casts, adds), ``data movement`` (pad, slice, concat, transpose,
  reshape, pooling), ``optimizer`` and ``other``.

Beside each layer: its forward FLOPs per image counted from the layer's shapes
(2·outputs·k²·C_in for a convolution, 2·inputs·k²·C_out for a transposed one) and the
rate its matmul/conv ops achieve on ×3 those FLOPs (forward, input and weight gradient),
against the dense-matmul rate measured in the same process (``matmul_peak.py``).

Times are wall time of the ops on TensorFlow's threads, summed: with ``intra_op`` threads
each op's duration is the wall time of the op (its Eigen/oneDNN threads run inside it), so
the table's total is ≈ the step's wall time when the inter-op pool has one thread.

    python benchmarks/step_profile.py --preset=paper_alexnet --batch=8 --steps=2
"""

from __future__ import annotations

import collections
import glob
import os
import re
import sys
import tempfile
import time

from absl import app, flags

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", "paper_alexnet", "Preset to profile.")
flags.DEFINE_integer("batch", 8, "Images per domain per step.")
flags.DEFINE_integer("threads", 2, "Intra-op threads (mtsyn_tf.runtime's plan).")
flags.DEFINE_integer("steps", 2, "Traced steps (after 2 untraced warm-up steps).")
flags.DEFINE_string("variant", "keras", "Model variant (benchmarks/model_variants.py).")
flags.DEFINE_integer("top_ops", 25, "Also list the most expensive ops by type and layer.")

_LAYER_RE = re.compile(
    r"(conv[1-5]|fc[67]|pool[125]|deconv(?:8|9|10)|output|d[123])(?:_\d+)?(?=/|$)"
)
_HEAD_RE = re.compile(r"(contour|depth|normals)_head")
_KINDS = (
    ("matmul/conv", re.compile(r"Conv2D|MatMul|Conv3D|BatchMatMul|Einsum", re.I)),
    ("batchnorm", re.compile(r"BatchNorm", re.I)),
    ("optimizer", re.compile(r"^Resource(Apply|Sparse)|AssignVariable|AssignSub|AssignAdd")),
    (
        "data movement",
        re.compile(
            r"Pad|Slice|Concat|Transpose|Reshape|Pool|Split|Pack|Unpack|Tile|Gather|"
            r"Identity|Copy|Broadcast|Select|SpaceToBatch|BatchToSpace|DepthToSpace|Squeeze",
            re.I,
        ),
    ),
    (
        "elementwise",
        re.compile(
            r"Relu|LeakyRelu|Mul|Add|Sub|Div|Rsqrt|Sqrt|Square|Mean|Sum|Cast|Neg|Exp|Log|"
            r"Maximum|Minimum|Sigmoid|Abs|Sign|Pow|Reciprocal|Greater|Less|Equal|BiasAdd",
            re.I,
        ),
    ),
)


# Events that contain other ops (the function call, control flow): their time is counted
# in the ops they run.
_CONTAINERS = {"Process", "PartitionedCall", "StatefulPartitionedCall", "While", "If", "Case"}


def op_kind(op_type: str, op_name: str = "") -> str:
    # Keras' BatchNormalization is moments + normalisation: elementwise ops in its scope.
    if re.search(r"_bn(_\d+)?/", op_name) and op_kind(op_type) != "optimizer":
        return "batchnorm"
    for kind, pattern in _KINDS:
        if pattern.search(op_type):
            return kind
    return "other"


def op_layer(op_name: str) -> str:
    """The layer an op belongs to, from its name scope (gradients included)."""
    matches = _LAYER_RE.findall(op_name)
    head = _HEAD_RE.search(op_name)
    if matches:
        layer = matches[-1]
        # d1…d3 only inside the discriminator; "output" only inside a head.
        if layer.startswith("d") and not layer.startswith("deconv"):
            return f"D.{layer}" if "discriminator" in op_name or "patch" in op_name else layer
        return f"{head.group(1)}.{layer}" if head else layer
    if re.search(r"(?i)adam|sgd|optimizer", op_name):
        return "(optimizer)"
    if re.search(r"(?i)loss|cross_entropy|log_depth|normal|contour|hed", op_name):
        return "(losses)"
    return "(other)"


def layer_flops(model, discriminator, image_size: int) -> dict:
    """Forward FLOPs per image of each convolution, from the layers' shapes."""
    import keras
    import numpy as np
    import tensorflow as tf

    flops = {}
    shapes = {}

    def record(name, layer, x_shape, y_shape):
        conv = getattr(layer, "conv", layer)
        k = int(np.prod(conv.kernel.shape[:2]))
        if isinstance(conv, keras.layers.Conv2DTranspose):
            c_out = conv.kernel.shape[2]
            flops[name] = 2 * int(np.prod(x_shape[1:])) * k * c_out
        else:
            c_in = conv.kernel.shape[2]
            flops[name] = 2 * int(np.prod(y_shape[1:])) * k * c_in
        shapes[name] = tuple(y_shape[1:])

    x = tf.zeros([1, image_size, image_size, 3])
    backbone = model.backbone
    taps = backbone(x, training=False)
    previous = x
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"):
        layer = getattr(backbone, name)
        y = taps[name]
        record(name, layer, previous.shape, y.shape)
        previous = y
    for task, head in model.heads.items():
        h = taps["fc7"]
        for name in ("deconv8", "deconv9", "deconv10", "out"):
            layer = getattr(head, name)
            y = layer(h, training=False) if name != "out" else layer(h)
            record(f"{task}.{'output' if name == 'out' else name}", layer, h.shape, y.shape)
            h = y
    z = taps["conv5"]
    for name in ("d1", "d2", "d3"):
        layer = getattr(discriminator, name)
        y = layer(z, training=False) if name != "d3" else layer(z)
        record(f"D.{name}", layer, z.shape, y.shape)
        z = y
    return flops, shapes


def trace_step(step, data, steps: int) -> str:
    import tensorflow as tf

    logdir = tempfile.mkdtemp(prefix="step_profile_")
    tf.profiler.experimental.start(logdir)
    for _ in range(steps):
        tf.nest.map_structure(lambda t: t.numpy(), step(data))
    tf.profiler.experimental.stop()
    files = glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb"))
    if not files:
        raise RuntimeError(f"The profiler wrote no .xplane.pb under {logdir}.")
    return files[0]


def op_events(xplane_path: str):
    """(op name, op type, duration s) of every TensorFlow op executed on the host."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xplane_path, "rb") as f:
        space.ParseFromString(f.read())
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        names = {k: m.name for k, m in plane.event_metadata.items()}
        for line in plane.lines:
            # TensorFlow ops run on the inter-op pool's threads ("tf_..."), the rest
            # (oneDNN/Eigen worker threads, Python) would count the same time twice.
            if not line.name.startswith("tf_"):
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" not in name:
                    continue
                op_name, _, op_type = name.rpartition(":")
                if not op_type or " " in op_type or op_type in _CONTAINERS:
                    continue
                if op_name.startswith("__inference"):
                    continue
                yield op_name, op_type, event.duration_ps * 1e-12


def main(argv):
    del argv
    from mtsyn_tf import runtime

    runtime.configure_threads(FLAGS.threads)
    import model_variants
    import tensorflow as tf
    from matmul_peak import matmul_gflops
    from train_step import _build, _random_batch, _time

    trainer = _build(FLAGS.preset, FLAGS.batch, "float32")
    flops, shapes = layer_flops(trainer.model, trainer.discriminator, trainer.model.image_size)
    model_variants.apply(trainer.model, FLAGS.variant)
    data = _random_batch(FLAGS.batch, trainer.model.image_size)
    step = tf.function(trainer.train_step)
    _time(lambda: step(data), 1, 1)
    cpu, wall = time.process_time(), time.perf_counter()
    path = trace_step(step, data, FLAGS.steps)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = matmul_gflops("float32", 2048, "cpu", repeats=3)

    by_layer = collections.defaultdict(lambda: collections.Counter())
    by_op = collections.Counter()
    for op_name, op_type, seconds in op_events(path):
        layer, kind = op_layer(op_name), op_kind(op_type, op_name)
        by_layer[layer][kind] += seconds / FLAGS.steps
        by_op[(layer, op_type)] += seconds / FLAGS.steps
    total = sum(sum(c.values()) for c in by_layer.values())
    rt = runtime.describe()
    print(
        f"{FLAGS.preset} batch {FLAGS.batch}, {FLAGS.threads} threads, variant {FLAGS.variant}, "
        f"oneDNN {'on' if rt['onednn'] else 'off'} (ONEDNN_MAX_CPU_ISA="
        f"{os.environ.get('ONEDNN_MAX_CPU_ISA', 'default')}); traced {FLAGS.steps} steps: "
        f"wall {wall / FLAGS.steps:.2f} s/step, CPU {cpu / FLAGS.steps:.2f} s/step, ops sum "
        f"{total:.2f} s/step; matmul peak {peak:.1f} GFLOP/s; load {os.getloadavg()[0]:.1f}"
    )
    kinds = [k for k, _ in _KINDS] + ["other"]
    header = f"{'layer':18s} {'GFLOP/img':>9s} " + " ".join(f"{k[:11]:>11s}" for k in kinds)
    print(header + f" {'total s':>8s} {'%step':>6s} {'conv GF/s':>9s} {'%peak':>6s}")
    # Step FLOPs per layer: ×3 (forward, input gradient, weight gradient) for B/H; D runs
    # forward+input-gradient in stage 1 and forward+backward on 2 batches in stage 2.
    order = sorted(by_layer, key=lambda n: -sum(by_layer[n].values()))
    for layer in order:
        counts = by_layer[layer]
        layer_total = sum(counts.values())
        gf = flops.get(layer)
        rate = ""
        if gf is not None and counts["matmul/conv"] > 0:
            mult = 3 if not layer.startswith("D.") else 8
            achieved = mult * gf * FLAGS.batch / counts["matmul/conv"] / 1e9
            rate = f"{achieved:9.1f} {100 * achieved / peak:5.1f}%"
        gf_text = f"{gf / 1e9:9.3f}" if gf is not None else f"{'':9s}"
        cells = " ".join(f"{counts[k]:11.3f}" for k in kinds)
        print(
            f"{layer:18s} {gf_text} {cells} {layer_total:8.3f} "
            f"{100 * layer_total / total:5.1f}% {rate}"
        )
    kind_totals = collections.Counter()
    for counts in by_layer.values():
        kind_totals.update(counts)
    cells = " ".join(f"{kind_totals[k]:11.3f}" for k in kinds)
    print(f"{'TOTAL':18s} {sum(flops.values()) / 1e9:9.3f} {cells} {total:8.3f}")
    print(f"\ntop {FLAGS.top_ops} (layer, op type) by time per step:")
    for (layer, op_type), seconds in by_op.most_common(FLAGS.top_ops):
        print(f"  {seconds:7.3f} s  {100 * seconds / total:5.1f}%  {layer:18s} {op_type}")


if __name__ == "__main__":
    app.run(main)
