"""Detailed balance (Bengio et al. 2023) with a log-flow head on the shared torso."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from gfnjax.algos.flow import FlowAlgorithm, FlowConfig
from gfnjax.losses.flow import detailed_balance


@dataclasses.dataclass(frozen=True)
class Config(FlowConfig):
    """DB defaults: lr 1e−3 (a, c code), 16 trajectories per iteration, uniform P_B.
    `lr_log_z` is unused (log Z is read off as log F(s0))."""


@dataclasses.dataclass(frozen=True)
class DB(FlowAlgorithm):
    name: ClassVar[str] = "db"
    Config: ClassVar[type] = Config
    uses_flow_head: ClassVar[bool] = True

    def objective(self, params, ev, traj, hp):
        return detailed_balance(
            ev.log_pf, ev.log_pb, ev.log_flow, traj.log_reward, traj.mask, traj.done
        )

    def log_z(self, state):
        obs0 = self.env.observe(self.env.reset(1))
        return self.apply_net(state.params["net"], obs0).log_flow[0]
