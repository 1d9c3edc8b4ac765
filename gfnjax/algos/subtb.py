"""Subtrajectory balance (Madan et al. 2023), O(T²) per trajectory."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from gfnjax.algos.db import DB
from gfnjax.algos.flow import FlowConfig
from gfnjax.losses.flow import subtrajectory_balance
from gfnjax.utils import check_range


@dataclasses.dataclass(frozen=True)
class Config(FlowConfig):
    """SubTB: λ = 0.9 (Ent-PPO and Tiapkin et al. hypergrid code; 1.9 in Tiapkin et al.'s bit
    sequences), lr 1e−3, 16 trajectories per iteration."""

    lam: float = 0.9

    SWEEPABLE: ClassVar[tuple[str, ...]] = FlowConfig.SWEEPABLE + ("lam",)

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "lam", 1e-6, 1e6)


@dataclasses.dataclass(frozen=True)
class SubTB(DB):
    name: ClassVar[str] = "subtb"
    Config: ClassVar[type] = Config

    def objective(self, params, ev, traj, hp):
        return subtrajectory_balance(
            ev.log_pf, ev.log_pb, ev.log_flow, traj.log_reward, traj.mask, traj.done, hp["lam"]
        )
