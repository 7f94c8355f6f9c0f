"""FeatureHistoryPool: CycleGAN-style pool of past synthetic feature maps for D.

Each query map is constant and equal to its id, so a returned or stored map tells
which query (or empty slot, id 0) it came from.
"""

import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.trainer.history_pool import FeatureHistoryPool

MAP_SHAPE = (2, 3, 4)


def maps(ids):
    ids = np.asarray(ids, np.float32)
    return np.broadcast_to(ids[:, None, None, None], (len(ids), *MAP_SHAPE)).copy()


def ids_of(values):
    """The id of each map; fails if a map is not constant (a mix of queries)."""
    values = np.asarray(values)
    flat = values.reshape(len(values), -1)
    np.testing.assert_array_equal(flat, flat[:, :1].repeat(flat.shape[1], axis=1))
    return flat[:, 0].astype(int).tolist()


def seed(a=0, b=0):
    return tf.constant([a, b], tf.int64)


def make_pool(pool_size, swap_prob, history=()):
    pool = FeatureHistoryPool(pool_size, swap_prob)
    pool.build((None, *MAP_SHAPE))
    if len(history):
        # Fill without swapping, then set the swap probability under test.
        pool.swap_prob = 0.0
        pool(maps(history), seed=seed())
        pool.swap_prob = swap_prob
    return pool


def stored_ids(pool):
    return ids_of(pool.storage.numpy())


def test_filling_returns_queries_and_stores_them():
    pool = make_pool(4, swap_prob=1.0)
    out = pool(maps([1, 2, 3]), seed=seed())
    assert ids_of(out) == [1, 2, 3]
    assert stored_ids(pool) == [1, 2, 3, 0]
    assert int(pool.count.numpy()) == 3
    out = pool(maps([4]), seed=seed(1))
    assert ids_of(out) == [4]
    assert stored_ids(pool) == [1, 2, 3, 4]
    assert int(pool.count.numpy()) == 4


def test_full_pool_without_swaps_is_a_passthrough():
    pool = make_pool(4, swap_prob=0.0, history=[1, 2, 3, 4])
    for step in range(3):
        out = pool(maps([10, 11, 12, 13, 14]), seed=seed(step))
        assert ids_of(out) == [10, 11, 12, 13, 14]
    assert stored_ids(pool) == [1, 2, 3, 4]
    assert int(pool.count.numpy()) == 4


@pytest.mark.parametrize("step", range(5))
def test_full_pool_always_swapping_returns_stored_maps_and_keeps_queries(step):
    pool = make_pool(4, swap_prob=1.0, history=[1, 2, 3, 4])
    queries = [10, 11, 12]
    out = ids_of(pool(maps(queries), seed=seed(7, step)))
    # Every query was exchanged for a map stored before this batch (ids are slot + 1).
    assert all(i in (1, 2, 3, 4) for i in out)
    after = stored_ids(pool)
    for slot in range(4):
        takers = [q for q, o in zip(queries, out) if o == slot + 1]
        if takers:
            assert after[slot] in takers  # the slot now holds a query that picked it
        else:
            assert after[slot] == slot + 1  # untouched
    assert int(pool.count.numpy()) == 4


@pytest.mark.parametrize("step", range(10))
def test_batch_straddling_the_fill_boundary_never_returns_an_empty_slot(step):
    # Slot 2 is filled by query 3 of this very batch; queries 4..6 swap with slots 0..2.
    pool = make_pool(3, swap_prob=1.0, history=[1, 2])
    out = ids_of(pool(maps([3, 4, 5, 6]), seed=seed(3, step)))
    assert out[0] == 3
    assert all(i in (1, 2, 3) for i in out[1:]), out
    assert 0 not in stored_ids(pool)
    assert int(pool.count.numpy()) == 3


def test_same_seed_same_result_and_seed_changes_it():
    def run(step_seeds):
        pool = make_pool(4, swap_prob=0.5, history=[1, 2, 3, 4])
        outs = [ids_of(pool(maps(list(range(10, 18))), seed=s)) for s in step_seeds]
        return outs, stored_ids(pool)

    first = run([seed(0, 0), seed(0, 1)])
    assert first == run([seed(0, 0), seed(0, 1)])
    assert first != run([seed(5, 0), seed(5, 1)])


def test_graph_mode_matches_eager():
    eager = make_pool(4, swap_prob=0.5, history=[1, 2, 3])
    graph = make_pool(4, swap_prob=0.5, history=[1, 2, 3])
    call = tf.function(lambda x, s: graph(x, seed=s))
    for step in range(3):
        x = maps([10 + step, 20 + step, 30 + step])
        np.testing.assert_array_equal(eager(x, seed=seed(1, step)), call(x, seed(1, step)))
    np.testing.assert_array_equal(eager.storage.numpy(), graph.storage.numpy())


def test_pool_size_zero_is_a_passthrough_without_state():
    pool = FeatureHistoryPool(0, swap_prob=1.0)
    x = np.random.default_rng(0).normal(size=(3, *MAP_SHAPE)).astype(np.float32)
    np.testing.assert_array_equal(pool(x, seed=seed()), x)
    assert pool.weights == []


def test_output_carries_no_gradient():
    pool = make_pool(2, swap_prob=0.0)
    x = tf.Variable(maps([1, 2]))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(pool(x, seed=seed()))
    assert tape.gradient(y, x) is None


@pytest.mark.parametrize(
    "kwargs, match",
    [({"pool_size": -1}, "pool_size=-1"), ({"swap_prob": 1.5}, "swap_prob=1.5")],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FeatureHistoryPool(**kwargs)
