"""XLA's cheapest compilation, for test programs that run a few times: optimising them costs more
than it saves."""

import jax

FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def compiled(fn, *args):
    """jit(fn) compiled for these argument shapes with FAST_COMPILE."""
    return jax.jit(fn).lower(*args).compile(compiler_options=FAST_COMPILE)
