"""Detailed balance (Bengio et al. 2023) with a log-flow head on the shared torso."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from gfnjax.algos.flow import FlowAlgorithm, FlowConfig
from gfnjax.losses.flow import detailed_balance
from gfnjax.utils import check_choice

DB_REDUCE = ("transitions", "trajectories")


@dataclasses.dataclass(frozen=True)
class Config(FlowConfig):
    """DB: lr 1e−3, 16 trajectories per iteration, uniform P_B. log Z is read off as log F(s0).

    average: "transitions" (the squared residuals are averaged over every valid transition of the
        batch, as in the Ent-PPO, gfnx and torchgfn code; default) or "trajectories" (per
        trajectory, then over the batch).
    """

    average: str = "transitions"

    def __post_init__(self):
        super().__post_init__()
        check_choice(self, "average", DB_REDUCE)


@dataclasses.dataclass(frozen=True)
class DB(FlowAlgorithm):
    name: ClassVar[str] = "db"
    Config: ClassVar[type] = Config
    uses_flow_head: ClassVar[bool] = True

    def objective(self, params, ev, traj, hp):
        return detailed_balance(
            ev.log_pf,
            ev.log_pb,
            ev.log_flow,
            traj.log_reward,
            traj.mask,
            traj.done,
            reduce=self.config.average,
        )

    def log_z(self, state):
        return self.apply_net(state.params["net"], self.s0_obs()).log_flow[0]
