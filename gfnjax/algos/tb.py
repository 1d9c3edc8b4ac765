"""Trajectory balance (Malkin et al. 2022)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from gfnjax.algos.flow import FlowAlgorithm, LogZConfig
from gfnjax.losses.flow import trajectory_balance


@dataclasses.dataclass(frozen=True)
class Config(LogZConfig):
    """TB: lr 1e−3, log Z lr 0.1, 16 trajectories per iteration, uniform P_B (docs/presets.md)."""


@dataclasses.dataclass(frozen=True)
class TB(FlowAlgorithm):
    name: ClassVar[str] = "tb"
    Config: ClassVar[type] = Config
    uses_log_z: ClassVar[bool] = True

    def objective(self, params, ev, traj, hp):
        return trajectory_balance(ev.log_pf, ev.log_pb, traj.log_reward, params["log_z"], traj.mask)
