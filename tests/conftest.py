import os

# Tests run on CPU; keep XLA from grabbing every core for intra-op parallelism in each worker.
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# One persistent XLA compilation cache per test session, shared by the xdist workers: many tests
# compile the same program (same algorithm, environment and schedule) and reuse it from here.
_CACHE = os.environ.setdefault(
    "GFNJAX_TEST_CACHE", os.path.join(os.path.dirname(__file__), "..", ".pytest_cache", "xla")
)

import jax  # noqa: E402

jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
