"""The jitted training loop: convergence to R/Z (exact TV), seed vmapping, chunking, sweeps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gfnjax
from gfnjax import algos, envs
from gfnjax.trainer import make_trainer

SMALL = dict(hidden=(64, 64))
FULL = dict()  # the default 2×256 MLP


@pytest.fixture(scope="module")
def env():
    return envs.make("hypergrid", dim=2, side=8)


@pytest.mark.slow
@pytest.mark.parametrize("name,iters", [("tb", 1000), ("db", 1500), ("subtb", 1500), ("fm", 1000)])
def test_flow_objectives_reach_small_exact_tv(env, name, iters):
    """Exact TV (DP over the 64-state DAG) below 0.05 within a fixed budget, 16 traj/iteration."""
    algo = algos.make(name, env, **FULL)
    _, curves = gfnjax.train(algo, jax.random.PRNGKey(0), iters, iters // 2)
    tv = np.asarray(curves["tv"])
    assert tv[0] > 0.5  # the uniform start is far from R/Z
    assert tv[-1] < 0.05, tv
    if name == "tb":
        assert float(curves["log_z_error"][-1]) < 0.1


def test_seed_in_vmapped_sweep_equals_lone_seed(env):
    algo = algos.make("tb", env, **SMALL)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in (0, 1, 2)])
    _, many = gfnjax.train_seeds(algo, keys, 40, 20)
    _, one = gfnjax.train(algo, jax.random.PRNGKey(1), 40, 20)
    for k in ("tv", "elbo", "log_z", "train_loss"):
        np.testing.assert_allclose(
            np.asarray(many[k][1]), np.asarray(one[k]), rtol=2e-5, atol=1e-6, err_msg=k
        )
    assert not np.allclose(many["tv"][0], many["tv"][1])  # different seeds differ


def test_same_seed_same_numbers(env):
    algo = algos.make("tb", env, **SMALL)
    _, a = gfnjax.train(algo, jax.random.PRNGKey(7), 40, 20)
    _, b = gfnjax.train(algo, jax.random.PRNGKey(7), 40, 20)
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))


def test_chunked_run_equals_single_program(env):
    algo = algos.make("tb", env, **SMALL)
    trainer = make_trainer(algo, 40, 20)
    _, whole = jax.jit(trainer.train)(jax.random.PRNGKey(3))
    carry = jax.jit(trainer.init)(jax.random.PRNGKey(3))
    carry, _ = jax.jit(trainer.evaluate)(carry)
    run1 = jax.jit(lambda c: trainer.run(c, 1))
    tvs = []
    for _ in range(2):
        carry, c = run1(carry)
        tvs.append(float(c["tv"][0]))
    np.testing.assert_allclose(tvs, np.asarray(whole["tv"][1:]), rtol=1e-6)


def test_learning_rate_grid_is_one_vmapped_program(env):
    """A 2-seed × 2-lr grid flattened to 4 cells equals each cell run alone."""
    algo = algos.make("tb", env, **SMALL)
    seeds = [0, 1, 0, 1]
    lrs = jnp.array([1e-3, 1e-3, 3e-3, 3e-3])
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    _, grid = gfnjax.train_seeds(algo, keys, 40, 20, hparams={"lr": lrs}, hparams_batched=True)
    _, alone = gfnjax.train(algo, jax.random.PRNGKey(0), 40, 20, hparams={"lr": 3e-3})
    np.testing.assert_allclose(
        np.asarray(grid["tv"][2]), np.asarray(alone["tv"]), rtol=2e-5, atol=1e-6
    )
    assert not np.allclose(grid["tv"][0][-1], grid["tv"][2][-1])


def test_hparams_and_schedule_validation(env):
    algo = algos.make("tb", env)
    with pytest.raises(ValueError, match="not a sweepable hyperparameter"):
        algo.init(jax.random.PRNGKey(0), {"hidden": 3})
    trainer = make_trainer(algo, 100, 30)  # not a multiple: the last period is shorter
    assert (trainer.num_evals, trainer.last_period) == (4, 10)
    with pytest.raises(ValueError, match="num_iterations"):
        make_trainer(algo, 0)


@pytest.mark.parametrize(
    "overrides,field",
    [
        (dict(lr=-1.0), "lr"),
        (dict(batch_size=0), "batch_size"),
        (dict(epsilon=1.5), "epsilon"),
        (dict(pb="magic"), "pb"),
        (dict(hidden=(0,)), "hidden"),
        (dict(lr_log_z=0.0), "lr_log_z"),
    ],
)
def test_bad_algo_config_names_the_field(env, overrides, field):
    with pytest.raises(ValueError, match=field):
        algos.make("tb", env, **overrides)


def test_unknown_algo_and_field_list_valid_ones(env):
    with pytest.raises(ValueError, match="valid names: .*tb"):
        algos.make("tbb", env)
    with pytest.raises(ValueError, match="valid fields"):
        algos.make("tb", env, learning_rate=1e-3)


@pytest.mark.slow
def test_tlm_and_learned_backward_policy_train(env):
    for pb in ("learned", "tlm"):
        algo = algos.make("tb", env, pb=pb, **SMALL)
        _, curves = gfnjax.train(algo, jax.random.PRNGKey(0), 1000, 1000)
        assert np.isfinite(np.asarray(curves["train_loss"][1:])).all()
        assert float(curves["tv"][-1]) < 0.05, (pb, curves["tv"])  # from 0.82 (uniform)


@pytest.mark.parametrize("seed_batch", [1, 2])
def test_lax_map_over_seeds_equals_lone_seed(env, seed_batch):
    """seed_batch=k (lax.map over rows, k vmapped at a time; the CPU default is 1) gives each seed
    the numbers it gets alone."""
    algo = algos.make("tb", env, **SMALL)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in (0, 1, 2)])
    _, many = gfnjax.train_seeds(algo, keys, 40, 20, seed_batch=seed_batch)
    _, one = gfnjax.train(algo, jax.random.PRNGKey(1), 40, 20)  # the program of the tests above
    for k in ("tv", "elbo", "log_z", "train_loss"):
        np.testing.assert_allclose(
            np.asarray(many[k][1]), np.asarray(one[k]), rtol=2e-5, atol=1e-6, err_msg=k
        )
    with pytest.raises(ValueError, match="seed_batch"):
        gfnjax.train_seeds(algo, keys, 40, 20, seed_batch=0)
