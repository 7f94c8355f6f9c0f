"""FusedAdam (TensorFlow's fused ResourceApplyAdam) against a float64 Adam and Keras' Adam.

Every comparison is bounded by a running error analysis of the float32 arithmetic
(``adam_reference``): the kernel and Keras run the same operations in float32, each
rounding by at most half an ulp, so each step's update is off by a few ulps of the terms
it is computed from, plus what m and v carry over from earlier steps. A wrong formula
(β1/β2 swapped, no bias correction, wrong slot) moves the weights by a sizeable fraction of
an update, three orders of magnitude above these bounds.

The mirrored check runs this file as a script (``python test_fused_adam.py mirrored OUT``):
the two logical CPUs must be set before TensorFlow initialises its devices.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

if __name__ != "__main__":  # the script sets up its devices before importing TensorFlow
    import keras
    import tensorflow as tf

    from mtsyn_tf.trainer.fused_adam import FusedAdam
    from mtsyn_tf.trainer.guarded_update import GuardedUpdate
    from mtsyn_tf.trainer.schedule import make_adam

# One ulp at 1 (2^-23): a float32 rounding moves x by at most EPS32·|x| / 2.
EPS32 = float(np.finfo(np.float32).eps)
STEPS = 6


def adam_reference(w0, grads, lrs, beta_1, beta_2, epsilon):
    """Adam in float64 on the float32 inputs (β, ε, lr as the float32 values the kernel
    gets) and a first-order bound on how far a float32 implementation can drift from it.

    Returns ``(weights, bounds, updates)``: per step, the float64 weights, the elementwise
    bound, and Σ|update| so far. The bound follows each rounding: ``½·EPS32·|x|`` per op
    result x, and the errors m, v and the weights carry into later steps.
    """
    b1, b2, eps = (float(np.float32(x)) for x in (beta_1, beta_2, epsilon))
    w = np.asarray(w0, np.float64)
    m, v = np.zeros_like(w), np.zeros_like(w)
    err_m, err_v, err_w, moved = (np.zeros_like(w) for _ in range(4))
    weights, bounds, updates = [], [], []
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        g, lr = np.asarray(g, np.float64), float(np.float32(lr))
        p1, p2 = b1**t, b2**t
        alpha = lr * np.sqrt(1 - p2) / (1 - p1)
        # float32 β^t is within one ulp; 1 − β^t cancels (×β^t/(1 − β^t)), √ halves it;
        # then ×, √, ÷ round once each.
        alpha_rel = EPS32 * (p2 / (1 - p2) / 2 + p1 / (1 - p1) + 1.5)
        m_new = m + (g - m) * (1 - b1)
        v_new = v + (g * g - v) * (1 - b2)
        # g − m, ×(1 − β1), + m each round (½ulp of terms ≤ |g| + |m|, and of m_new); the
        # carried error shrinks by β1 (m_new = β1·m + (1 − β1)·g). v likewise with g².
        err_m = b1 * err_m + EPS32 * (np.abs(g) + np.abs(m) + np.abs(m_new) / 2)
        err_v = b2 * err_v + EPS32 * (g * g * 1.5 + v + v_new / 2)
        root = np.sqrt(v_new)
        denom = root + eps
        update = alpha * m_new / denom
        # √v from v's error (derivative 1/(2√v)) and its rounding, + ε, × α, ÷ denom.
        err_denom = err_v / (2 * root) + EPS32 * (root + denom) / 2
        err_u = np.abs(update) * (alpha_rel + EPS32 + err_denom / denom) + alpha * err_m / denom
        w = w - update
        err_w = err_w + err_u + EPS32 * np.abs(w) / 2
        m, v = m_new, v_new
        moved = moved + np.abs(update)
        weights.append(w.copy())
        bounds.append(err_w.copy())
        updates.append(moved.copy())
    return weights, bounds, updates


def _problem(size, seed=0):
    """Weights and gradients of mixed scales (1e-3…1e1), none zero (v > 0)."""
    rng = np.random.default_rng(seed)
    w0 = rng.normal(size=size).astype(np.float32)
    scale = 10.0 ** rng.uniform(-3, 1, size=size)
    grads = [
        (rng.normal(size=size) * scale + np.sign(rng.normal(size=size)) * 1e-4).astype(np.float32)
        for _ in range(STEPS)
    ]
    return w0, grads


def _run(optimizer, w0, grads, graph=True):
    """Applies ``grads`` in turn; returns the weights after each step."""
    w = keras.Variable(w0, name="w")
    optimizer.build([w])

    def apply(g):
        optimizer.apply([g], [w])

    apply = tf.function(apply) if graph else apply
    out = []
    for g in grads:
        apply(tf.constant(g))
        out.append(np.array(w.numpy(), copy=True))
    return out, optimizer, w


def _schedule():
    # Iterations-based: updates 0–2 at 1e-2, then 1e-3.
    return keras.optimizers.schedules.PiecewiseConstantDecay([2], [1e-2, 1e-3])


def _check(actual, weights, bounds, updates, factor=2.0, extra_rel=0.0):
    """|actual − reference| ≤ factor · bound (+ extra_rel · Σ|update|) at every step.

    factor 2: the bound is first order in EPS32 (products of errors are left out).
    """
    for t, (a, w, b, u) in enumerate(zip(actual, weights, bounds, updates), start=1):
        tol = factor * b + extra_rel * u
        # Non-vacuous: the allowance is a small fraction of how far the weights moved.
        assert np.all(tol < 2e-3 * u + 1e-5 * np.abs(w)), f"step {t}: bound too loose"
        excess = np.abs(a - w) - tol
        assert excess.max() <= 0, (
            f"step {t}: {int((excess > 0).sum())} elements beyond the bound; worst "
            f"|diff| {np.abs(a - w)[np.argmax(excess)]:.3g} vs bound {tol[np.argmax(excess)]:.3g}"
        )


# === Numerics ===
@pytest.mark.parametrize("size", [1024, 1000])  # packet-multiple and scalar paths
@pytest.mark.parametrize("betas", [(0.5, 0.999), (0.9, 0.999), (0.5, 0.75)])
def test_matches_float64_adam(betas, size):
    w0, grads = _problem(size)
    schedule = _schedule()
    lrs = [float(schedule(k)) for k in range(STEPS)]
    optimizer = FusedAdam(schedule, beta_1=betas[0], beta_2=betas[1])
    actual, _, _ = _run(optimizer, w0, grads)
    _check(actual, *adam_reference(w0, grads, lrs, *betas, 1e-7))


def _complement_mismatch(beta):
    """Relative difference of Keras' float32(1 − β) from the kernel's 1 − float32(β)."""
    keras_c = float(np.float32(1 - beta))
    kernel_c = float(np.float32(1) - np.float32(beta))
    return abs(keras_c / kernel_c - 1)


@pytest.mark.parametrize("betas", [(0.5, 0.999), (0.9, 0.999), (0.5, 0.75)])
def test_matches_keras_adam(betas):
    w0, grads = _problem(1000, seed=1)
    fused, _, _ = _run(FusedAdam(_schedule(), beta_1=betas[0], beta_2=betas[1]), w0, grads)
    reference, _, _ = _run(
        keras.optimizers.Adam(_schedule(), beta_1=betas[0], beta_2=betas[1]), w0, grads
    )
    schedule = _schedule()
    lrs = [float(schedule(k)) for k in range(STEPS)]
    weights, bounds, updates = adam_reference(w0, grads, lrs, *betas, 1e-7)
    # Each is within the bound of the float64 Adam; Keras' step weights 1 − β are rounded
    # from float64 (see FusedAdam): m scales by δ1, v by δ2, the update by δ1 + δ2/2.
    mismatch = _complement_mismatch(betas[0]) + _complement_mismatch(betas[1]) / 2
    _check(fused, reference, bounds, updates, factor=4.0, extra_rel=1.01 * mismatch)


def fused_op_count(function, *args):
    """ResourceApplyAdam ops in ``function``'s graph, nested functions (conds) included."""
    graph_def = function.get_concrete_function(*args).graph.as_graph_def()
    nodes = [*graph_def.node, *(n for f in graph_def.library.function for n in f.node_def)]
    return sum(node.op == "ResourceApplyAdam" for node in nodes)


def _fused_op_count(optimizer, grads, variables):
    return fused_op_count(tf.function(lambda grads: optimizer.apply(grads, variables)), grads)


def test_dense_float32_takes_the_fused_kernel_others_fall_back():
    w = keras.Variable(np.ones((4, 3), np.float32))
    b = keras.Variable(np.ones(3, np.float32))
    dense = [tf.ones((4, 3)), tf.ones(3)]
    assert _fused_op_count(FusedAdam(1e-3), dense, [w, b]) == 2
    assert _fused_op_count(FusedAdam(1e-3, amsgrad=True), dense, [w, b]) == 0
    sparse = tf.IndexedSlices(tf.ones((1, 3)), tf.constant([2]), tf.constant([4, 3]))
    assert _fused_op_count(FusedAdam(1e-3), [sparse], [w]) == 0


def test_fallbacks_equal_keras_adam():
    """amsgrad and sparse gradients run Keras' own update: bit for bit the same."""
    w0, grads = _problem((5, 4), seed=2)
    rows = tf.constant([0, 3])

    def sparse(g):
        return tf.IndexedSlices(tf.gather(g, rows), rows, tf.constant(g.shape))

    for amsgrad, as_gradient in ((True, tf.constant), (False, sparse)):
        results = []
        for cls in (FusedAdam, keras.optimizers.Adam):
            w = keras.Variable(w0)
            optimizer = cls(1e-2, amsgrad=amsgrad)
            for g in grads:
                optimizer.apply([as_gradient(g)], [w])
            results.append(w.numpy())
        np.testing.assert_array_equal(*results)


# === Checkpoints and config ===
def test_keras_adam_checkpoint_restores_into_fused_adam(tmp_path):
    w0, grads = _problem(64, seed=3)
    old, old_optimizer, old_w = _run(keras.optimizers.Adam(1e-2, beta_1=0.5), w0, grads[:3])
    path = tf.train.Checkpoint(optimizer=old_optimizer, w=old_w).save(str(tmp_path / "ckpt"))

    new_w = keras.Variable(np.zeros_like(w0), name="w")
    new_optimizer = FusedAdam(1e-2, beta_1=0.5)
    new_optimizer.build([new_w])
    # The same slots under the same names (the paths differ only by the optimizer's name).
    assert [(v.name, v.shape) for v in new_optimizer.variables] == [
        (v.name, v.shape) for v in old_optimizer.variables
    ]
    tf.train.Checkpoint(optimizer=new_optimizer, w=new_w).restore(path).assert_consumed()
    for a, b in zip(new_optimizer.variables, old_optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    np.testing.assert_array_equal(new_w.numpy(), old[-1])
    # Training continues from the restored slots and step: the same next updates as Keras.
    for g in grads[3:]:
        new_optimizer.apply([tf.constant(g)], [new_w])
        old_optimizer.apply([tf.constant(g)], [old_w])
    weights, bounds, updates = adam_reference(w0, grads, [1e-2] * STEPS, 0.5, 0.999, 1e-7)
    mismatch = _complement_mismatch(0.999) / 2
    _check([new_w.numpy()], [old_w.numpy()], bounds[-1:], updates[-1:], 4.0, 1.01 * mismatch)


def test_config_round_trips():
    optimizer = make_adam(1e-3, 100, beta_1=0.5, kind="cosine", warmup_fraction=0.1)
    assert isinstance(optimizer, FusedAdam)
    config = keras.optimizers.serialize(optimizer)
    assert config["registered_name"] == "mtsyn_tf>FusedAdam"
    restored = keras.optimizers.deserialize(config)
    assert type(restored) is FusedAdam
    assert restored.get_config() == optimizer.get_config()


# === Wrappers: loss scaling, rollback, accumulation ===
def test_under_loss_scale_optimizer():
    w0, grads = _problem(256, seed=4)
    scale = 2.0**10  # a power of two: unscaling is exact
    optimizer = keras.optimizers.LossScaleOptimizer(FusedAdam(1e-2), initial_scale=scale)
    w = keras.Variable(w0)
    optimizer.build([w])
    apply = tf.function(lambda g: optimizer.apply([g], [w]))
    apply(tf.constant(grads[0] * scale))
    before = [np.array(v.numpy(), copy=True) for v in [w, *optimizer.inner_optimizer.variables]]
    apply(tf.constant(np.full_like(grads[0], np.inf)))  # overflow: skipped, scale halved
    for value, variable in zip(before, [w, *optimizer.inner_optimizer.variables]):
        np.testing.assert_array_equal(variable.numpy(), value)
    assert float(optimizer.dynamic_scale.numpy()) == scale / 2
    actual = [before[0]]
    for g in grads[1:]:
        apply(tf.constant(g * scale / 2))
        actual.append(w.numpy())
    _check(actual, *adam_reference(w0, grads, [1e-2] * STEPS, 0.9, 0.999, 1e-7))


def test_guarded_skip_rolls_back_fused_update_exactly():
    w = keras.Variable(np.array([1.0, -2.0, 3.0], np.float32))
    optimizer = FusedAdam(0.1, beta_1=0.5)
    optimizer.build([w])
    guard = GuardedUpdate("skip", {"loss": keras.metrics.Mean(name="loss")})

    @tf.function
    def run(target):
        saved = guard.save([w, *optimizer.variables])
        with tf.GradientTape() as tape:
            per_example = tf.square(w - target)
            loss = tf.reduce_sum(per_example)
        grads = tape.gradient(loss, [w])
        return guard.apply(optimizer, grads, [w], saved, loss, {"loss": per_example})

    assert bool(run(tf.constant([0.5, 0.5, 0.5])))
    before = [np.array(v.numpy(), copy=True) for v in [w, *optimizer.variables]]
    assert not bool(run(tf.constant([0.5, np.nan, 0.5])))
    for value, variable in zip(before, [w, *optimizer.variables]):
        np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.path)
    assert bool(run(tf.constant([0.0, 0.0, 0.0])))
    assert int(optimizer.iterations.numpy()) == 2
    assert not np.array_equal(w.numpy(), before[0])


def test_keras_gradient_accumulation():
    """Keras' gradient_accumulation_steps=2: one fused update per two gradients (their mean).

    ``iterations`` (and so the bias correction's t) counts updates, not gradients."""
    w0, grads = _problem(128, seed=5)
    fused, optimizer, _ = _run(FusedAdam(1e-2, gradient_accumulation_steps=2), w0, grads)
    assert int(optimizer.iterations.numpy()) == STEPS // 2
    np.testing.assert_array_equal(fused[0], w0)  # the first gradient is only accumulated
    # float32 (a + b) / 2, as Keras forms it: the sum rounds once, ÷2 is exact.
    means = [
        ((a.astype(np.float64) + b) / 2).astype(np.float32) for a, b in zip(grads[::2], grads[1::2])
    ]
    weights, bounds, updates = adam_reference(w0, means, [1e-2] * 3, 0.9, 0.999, 1e-7)
    _check(fused[1::2], weights, bounds, updates)


# === MirroredStrategy (subprocess: two logical CPUs) ===
def test_mirrored_two_cpus(tmp_path):
    out = tmp_path / "mirrored.npz"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, __file__, "mirrored", str(out)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = np.load(out)
    w0, grads = _problem(1000, seed=6)
    # Each replica holds half of the gradient (÷2 is exact); the all-reduce sums them to g.
    weights, bounds, updates = adam_reference(w0, grads, [1e-2] * STEPS, 0.5, 0.999, 1e-7)
    for replica in range(2):
        _check(list(data[f"w{replica}"]), weights, bounds, updates)
        for slot in ("m", "v"):
            np.testing.assert_array_equal(data[f"{slot}{replica}"], data[f"{slot}0"])
    np.testing.assert_array_equal(data["w1"], data["w0"])
    assert data["fused_ops"] == 2  # one per replica's component


def _mirrored_main(out):
    import tensorflow as tf

    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
    )
    import keras

    from mtsyn_tf.trainer.fused_adam import FusedAdam

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    w0, grads = _problem(1000, seed=6)
    with strategy.scope():
        w = keras.Variable(w0, name="w")
        optimizer = FusedAdam(1e-2, beta_1=0.5)
        optimizer.build([w])

    @tf.function
    def step(g):
        def replica_fn():
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            half = g / 2
            optimizer.apply([tf.where(replica == 0, half, g - half)], [w])

        strategy.run(replica_fn)

    fused_ops = fused_op_count(step, tf.constant(grads[0]))
    per_step = {f"{s}{r}": [] for s in ("w", "m", "v") for r in range(2)}
    for g in grads:
        step(tf.constant(g))
        for name, variable in (
            ("w", w),
            ("m", optimizer._momentums[0]),
            ("v", optimizer._velocities[0]),
        ):
            for r, component in enumerate(variable.value.values):
                per_step[f"{name}{r}"].append(component.numpy())
    np.savez(out, fused_ops=fused_ops, **{k: np.stack(v) for k, v in per_step.items()})


if __name__ == "__main__":
    if sys.argv[1] != "mirrored":
        sys.exit(f"usage: {sys.argv[0]} mirrored OUT.npz. Received: {sys.argv[1:]}")
    _mirrored_main(sys.argv[2])
