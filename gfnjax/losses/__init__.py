"""Pure loss functions (importable without the rest of gfnjax)."""

from gfnjax.losses.flow import (
    backward_maximum_likelihood,
    detailed_balance,
    flow_matching,
    subtrajectory_balance,
    trajectory_balance,
    trajectory_balance_residual,
)

__all__ = [
    "backward_maximum_likelihood",
    "detailed_balance",
    "flow_matching",
    "subtrajectory_balance",
    "trajectory_balance",
    "trajectory_balance_residual",
]
