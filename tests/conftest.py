import os

# Tests run on CPU; keep XLA from grabbing every core for intra-op parallelism in each worker.
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)
os.environ.setdefault("JAX_PLATFORMS", "cpu")
