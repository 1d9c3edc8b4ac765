"""Pure loss functions (importable without the rest of gfnjax)."""

from gfnjax.losses.flow import (
    backward_maximum_likelihood,
    detailed_balance,
    flow_matching,
    subtrajectory_balance,
    trajectory_balance,
    trajectory_balance_residual,
)
from gfnjax.losses.pg import (
    categorical_kl,
    conjugate_gradient,
    gae,
    mean_center,
    niu_costs,
    niu_log_z_update,
    normalize,
    pg_surrogate,
    ppo_surrogate,
    reward_to_go,
    soft_return,
    soft_rewards,
    trpo_step,
)

__all__ = [
    "backward_maximum_likelihood",
    "detailed_balance",
    "flow_matching",
    "subtrajectory_balance",
    "trajectory_balance",
    "trajectory_balance_residual",
    "categorical_kl",
    "conjugate_gradient",
    "gae",
    "mean_center",
    "niu_costs",
    "niu_log_z_update",
    "normalize",
    "pg_surrogate",
    "ppo_surrogate",
    "reward_to_go",
    "soft_return",
    "soft_rewards",
    "trpo_step",
]
