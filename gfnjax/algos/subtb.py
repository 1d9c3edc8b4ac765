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
    """SubTB defaults: λ = 0.9 (REFERENCE.md §1, authors' code), lr 1e−3, 16 trajectories."""

    lam: float = 0.9

    SWEEPABLE = FlowConfig.SWEEPABLE + ("lam",)

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "lam", 0.0, None, lo_open=True)


@dataclasses.dataclass(frozen=True)
class SubTB(DB):
    name: ClassVar[str] = "subtb"
    Config: ClassVar[type] = Config

    def objective(self, params, ev, traj, hp):
        return subtrajectory_balance(
            ev.log_pf, ev.log_pb, ev.log_flow, traj.log_reward, traj.mask, traj.done, hp["lam"]
        )
