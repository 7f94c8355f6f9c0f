"""Run by test_keras_metrics_distributed.py in a fresh process (logical devices must be
configured before TensorFlow initialises). Updates each metric per replica under a
2-device MirroredStrategy and prints the results and the numpy references as JSON."""

import json
import sys

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

from mtsyn_tf.metrics.contour_proxy import ContourProxyAccumulator  # noqa: E402
from mtsyn_tf.metrics.depth import DepthAccumulator  # noqa: E402
from mtsyn_tf.metrics.keras_metrics import (  # noqa: E402
    ContourMetrics,
    DepthMetrics,
    NormalAngleMetrics,
)
from mtsyn_tf.metrics.normals import NormalAccumulator  # noqa: E402


def main():
    rng = np.random.default_rng(0)
    n, size = 8, 6  # 8 images -> 2 global batches of 4 -> 2 images per replica
    gt_depth = rng.uniform(0.5, 5, (n, size, size, 1)).astype(np.float32)
    pred_depth = (gt_depth * rng.uniform(0.7, 1.4, gt_depth.shape)).astype(np.float32)
    valid = (rng.random((n, size, size, 1)) > 0.25).astype(np.float32)
    gt_normals = rng.normal(size=(n, size, size, 3)).astype(np.float32)
    gt_normals /= np.linalg.norm(gt_normals, axis=-1, keepdims=True)
    pred_normals = (gt_normals + 0.5 * rng.normal(size=gt_normals.shape)).astype(np.float32)
    gt_contour = (rng.random((n, size, size, 1)) < 0.2).astype(np.float32)
    prob = np.clip(0.4 * gt_contour + 0.7 * rng.random(gt_contour.shape), 0, 1).astype(np.float32)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        metrics = {
            "depth": DepthMetrics(),
            "normals": NormalAngleMetrics(),
            "contours": ContourMetrics(),
        }
    data = tf.data.Dataset.from_tensor_slices(
        (gt_depth, pred_depth, valid, gt_normals, pred_normals, gt_contour, prob)
    ).batch(4)
    dist_data = strategy.experimental_distribute_dataset(data)
    replica_batch_sizes = []

    @tf.function
    def step(batch):
        def replica_fn(gd, pd, v, gn, pn, gc, pc):
            metrics["depth"].update_state(gd, pd, v)
            metrics["normals"].update_state(gn, pn, v)
            metrics["contours"].update_state(gc, pc)
            return tf.shape(gd)[0]

        return strategy.run(replica_fn, args=batch)

    for batch in dist_data:
        sizes = strategy.experimental_local_results(step(batch))
        replica_batch_sizes.append([int(s) for s in sizes])

    depth, normals, contours = (
        DepthAccumulator(),
        NormalAccumulator(exact_median=True),
        ContourProxyAccumulator(),
    )
    depth.update(pred_depth, gt_depth, valid > 0)
    normals.update(pred_normals, gt_normals, valid[..., 0] > 0)
    contours.update(prob, gt_contour)
    reference = {
        "depth": depth.result(),
        "normals": normals.result(),
        "contours": contours.result(),
    }
    out = {
        "replica_batch_sizes": replica_batch_sizes,
        "keras": {
            k: {name: float(v) for name, v in m.result().items()} for k, m in metrics.items()
        },
        "numpy": {
            k: {name: reference[k][name] for name in out_names}
            for k, out_names in (
                ("depth", ("abs_rel", "rmse", "delta1")),
                ("normals", ("mean", "median", "pct_11_25", "pct_22_5", "pct_30")),
                ("contours", ("f_0_5", "ap")),
            )
        },
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
