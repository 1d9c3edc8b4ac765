"""gfnjax: JAX-native, purely functional GFlowNet training library and benchmark suite."""

from gfnjax import algos, envs, losses, metrics, rollout
from gfnjax.train import Trainer, make_trainer, train, train_seeds

__version__ = "0.1.0"

__all__ = ["algos", "envs", "losses", "metrics", "rollout", "Trainer", "make_trainer", "train",
           "train_seeds", "__version__"]
