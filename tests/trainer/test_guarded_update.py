"""GuardedUpdate on its own: a non-finite stage is undone exactly and counted once.

A two-variable "stage" (a weight and a BatchNorm-like statistic the forward pass moves)
with Adam, whose slots and step counter must roll back too. Everything is compared with
``array_equal``: the rollback restores saved values, it does not recompute them, and a
finite step under "skip" runs the same arithmetic as under "stop" (gradients selected by
``tf.where``, not rescaled).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.trainer.guarded_update import GuardedUpdate


def _stage(policy):
    keras.utils.set_random_seed(0)
    weight = keras.Variable(np.array([1.0, -2.0, 3.0], np.float32), name="w")
    statistic = keras.Variable(np.zeros(3, np.float32), trainable=False, name="moving_mean")
    optimizer = keras.optimizers.Adam(0.1)
    optimizer.build([weight])
    trackers = {"loss": keras.metrics.Mean(name="loss")}
    return GuardedUpdate(policy, trackers), weight, statistic, optimizer, trackers


def _runner(guard, weight, statistic, optimizer, graph=False, require=None):
    """One stage: the forward pass moves the statistic, then the gradient is applied."""

    def run(target):
        saved = guard.save([weight, statistic, *optimizer.variables])
        statistic.assign(0.9 * statistic + 0.1 * target)  # moves before the update, like BN
        with tf.GradientTape() as tape:
            per_example = tf.square(weight - target)
            loss = tf.reduce_sum(per_example) / 3.0
        grads = tape.gradient(loss, [weight])
        logs = {"loss": per_example}
        return guard.apply(optimizer, grads, [weight], saved, loss, logs, require)

    return tf.function(run) if graph else run


def _values(*variables):
    return [np.array(v.numpy(), copy=True) for v in variables]


@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_non_finite_stage_is_undone_exactly_and_counted(mode):
    guard, weight, statistic, optimizer, trackers = _stage("skip")
    run = _runner(guard, weight, statistic, optimizer, graph=mode == "graph")
    run(tf.constant([0.5, 0.5, 0.5]))  # a good step
    before = _values(weight, statistic, *optimizer.variables)
    kept = run(tf.constant([0.5, np.nan, 0.5]))
    assert not bool(kept)
    for value, variable in zip(before, [weight, statistic, *optimizer.variables]):
        np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.path)
    assert int(optimizer.iterations.numpy()) == 1
    assert float(trackers["skipped_steps"].result()) == 1.0
    # The non-finite values never reached the tracker: its mean is the good step's.
    assert trackers["loss"].count.numpy() == 3
    assert np.isfinite(float(trackers["loss"].result()))
    # A finite step afterwards is applied and not counted.
    assert bool(run(tf.constant([0.0, 0.0, 0.0])))
    assert int(optimizer.iterations.numpy()) == 2
    assert float(trackers["skipped_steps"].result()) == 1.0


def test_finite_step_under_skip_equals_stop():
    skip = _stage("skip")
    stop = _stage("stop")
    target = tf.constant([0.5, 0.25, -1.0])
    run_skip, run_stop = _runner(*skip[:4]), _runner(*stop[:4])
    for _ in range(2):
        assert bool(run_skip(target))
        assert run_stop(target) is None
    for a, b in zip(
        _values(*skip[1:3], *skip[3].variables), _values(*stop[1:3], *stop[3].variables)
    ):
        np.testing.assert_array_equal(a, b)
    assert "skipped_steps" in skip[4] and "skipped_steps" not in stop[4]
    assert float(skip[4]["skipped_steps"].result()) == 0.0


@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_finite_stage_requiring_a_rolled_back_stage_is_undone(mode):
    """Stage 2 with ``require`` = stage 1's verdict: one poisoned batch is skipped whole."""
    guard, weight, statistic, optimizer, trackers = _stage("skip")
    before = _values(weight, statistic, *optimizer.variables)
    run = _runner(guard, weight, statistic, optimizer, mode == "graph", tf.constant(False))
    assert not bool(run(tf.constant([0.5, 0.25, -1.0])))  # finite, but stage 1 was undone
    for value, variable in zip(before, [weight, statistic, *optimizer.variables]):
        np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.path)
    assert float(trackers["skipped_steps"].result()) == 1.0
    run = _runner(guard, weight, statistic, optimizer, mode == "graph", tf.constant(True))
    assert bool(run(tf.constant([0.5, 0.25, -1.0])))
    assert int(optimizer.iterations.numpy()) == 1


def test_stop_policy_applies_a_non_finite_step():
    """ "stop" leaves the run to NonFiniteLossGuard: the NaN reaches the weights."""
    guard, weight, statistic, optimizer, _ = _stage("stop")
    _runner(guard, weight, statistic, optimizer)(tf.constant([0.5, np.nan, 0.5]))
    assert np.isnan(weight.numpy()[1]) and int(optimizer.iterations.numpy()) == 1


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="nonfinite_policy must be one of .*'retry'"):
        GuardedUpdate("retry", {})
