"""REINFORCE family on the soft-RL view (docs/methods.md §3.1–3.5; Tiapkin et al. 2024 and the
Ent-PPO paper's baselines).

    vpg         A_t = G(τ)                        unbiased ELBO gradient, no baseline
    rtg         A_t = Σ_{t'≥t} g_{t'}             reward-to-go (causality)
    v_baseline  A_t = RTG_t − V_φ(s_t)            V_φ fitted by MSE to RTG (GAE with λ = 1)
    gae         A_t = GAE_λ,  V_φ → TD(λ) return  λ = 0.9 on hypergrid (Ent-PPO code)
    gae_subtb   GAE_λ with V_φ fitted as a log-flow by SubTB (P_F, P_B fixed, V(x) := log R(x))

All take one Adam step per iteration on `losses.pg.pg_surrogate`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from gfnjax.algos.pg import GAEConfig, PGAlgorithm, PGConfig, ValueConfig
from gfnjax.losses.pg import gae
from gfnjax.utils import check_range


@dataclasses.dataclass(frozen=True)
class VPGConfig(PGConfig):
    """VPG / RTG: policy lr 1e−3 and 16 trajectories per iteration (Ent-PPO code); uniform P_B;
    no advantage normalisation."""


@dataclasses.dataclass(frozen=True)
class BaselineConfig(ValueConfig):
    """Value baseline: A_t = RTG_t − V(s_t) (GAE with λ = 1, so there is no λ field); value lr
    1e−3 and 2 value epochs per iteration (Ent-PPO code, configs/v_baseline_hypergrid.yaml)."""

    value_epochs: int = 2


@dataclasses.dataclass(frozen=True)
class GAESubTBConfig(GAEConfig):
    """GAE with a SubTB-trained log-flow value: λ = 0.7 (Ent-PPO code,
    configs/GAE_subeb_hypergrid.yaml) and SubTB λ (`subtb_lam`) 0.9."""

    lam: float = 0.7
    subtb_lam: float = 0.9

    SWEEPABLE: ClassVar[tuple[str, ...]] = GAEConfig.SWEEPABLE + ("subtb_lam",)

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "subtb_lam", 1e-6, 1e6)


@dataclasses.dataclass(frozen=True)
class VPG(PGAlgorithm):
    name: ClassVar[str] = "vpg"
    Config: ClassVar[type] = VPGConfig
    advantage_kind: ClassVar[str] = "return"


@dataclasses.dataclass(frozen=True)
class RTG(PGAlgorithm):
    name: ClassVar[str] = "rtg"
    Config: ClassVar[type] = VPGConfig
    advantage_kind: ClassVar[str] = "rtg"


@dataclasses.dataclass(frozen=True)
class VBaseline(PGAlgorithm):
    name: ClassVar[str] = "v_baseline"
    Config: ClassVar[type] = BaselineConfig
    uses_value: ClassVar[bool] = True

    def gae_and_targets(self, rewards, values, mask, hp):
        return gae(rewards, values, mask, 1.0)  # A = RTG − V, target = RTG


@dataclasses.dataclass(frozen=True)
class GAE(PGAlgorithm):
    name: ClassVar[str] = "gae"
    Config: ClassVar[type] = GAEConfig
    uses_value: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True)
class GAESubTB(PGAlgorithm):
    name: ClassVar[str] = "gae_subtb"
    Config: ClassVar[type] = GAESubTBConfig
    uses_value: ClassVar[bool] = True
    value_loss: ClassVar[str] = "subtb"
