import os

# Tests run on CPU; keep XLA from grabbing every core for intra-op parallelism in each worker.
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# One persistent XLA compilation cache per test session, shared by the xdist workers: many tests
# compile the same program (same algorithm, environment and schedule) and reuse it from here.
# A cache chosen by the caller (tools/mutate.py sets JAX_COMPILATION_CACHE_DIR) is kept.
import jax  # noqa: E402

if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    jax.config.update(
        "jax_compilation_cache_dir",
        os.path.join(os.path.dirname(__file__), "..", ".pytest_cache", "xla"),
    )
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
