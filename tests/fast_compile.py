"""XLA's cheapest compilation, for test programs that run a few times: optimising them costs more
than it saves."""

import jax

FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def compiled(fn, *args):
    """jit(fn) compiled for these argument shapes with FAST_COMPILE."""
    return jax.jit(fn).lower(*args).compile(compiler_options=FAST_COMPILE)


def two_updates_are_finite(algo_name: str, env, torso: str):
    """Smoke run: `algo_name` with a small net on `env` (published presets off), init + 2 updates
    compiled with FAST_COMPILE; asserts every parameter and logged scalar is finite and returns
    the last StepInfo."""
    import numpy as np

    from gfnjax import algos

    fields = set(algos.config_fields(algo_name))
    small = dict(hidden=(32,), batch_size=4, torso=torso)
    algo = algos.make(
        algo_name, env, preset="defaults", **{k: v for k, v in small.items() if k in fields}
    )
    state = algo.init(jax.random.PRNGKey(0))
    update = compiled(algo.update, state, jax.random.PRNGKey(1))
    for i in range(2):
        state, info = update(state, jax.random.PRNGKey(i + 1))
    for leaf in jax.tree.leaves(state.params):
        assert np.all(np.isfinite(np.asarray(leaf))), algo_name
    for k, v in info.scalars.items():
        assert np.isfinite(float(v)), (algo_name, k)
    return info
