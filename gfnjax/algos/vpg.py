"""REINFORCE family on the soft-RL view (REFERENCE.md §3.1–3.5; Tiapkin et al. 2024 (c)).

    vpg         A_t = G(τ)                        unbiased ELBO gradient, no baseline
    rtg         A_t = Σ_{t'≥t} g_{t'}             reward-to-go (causality)
    v_baseline  A_t = RTG_t − V_φ(s_t)            V_φ fitted by MSE to RTG (GAE with λ = 1)
    gae         A_t = GAE_λ,  V_φ → TD(λ) return  λ = 0.9 on hypergrid (c code)
    gae_subtb   GAE_λ with V_φ fitted as a log-flow by SubTB (P_F, P_B fixed, V(x) := log R(x))

All take one Adam step per iteration on `losses.pg.pg_surrogate`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp

from gfnjax.algos.pg import PGAlgorithm, PGConfig, ValueConfig
from gfnjax.utils import check_range


@dataclasses.dataclass(frozen=True)
class VPGConfig(PGConfig):
    """VPG / RTG defaults: policy lr 1e−3 and 16 trajectories per iteration as for the other
    objectives on hypergrid (a, c); uniform P_B; no advantage normalisation (c)."""


@dataclasses.dataclass(frozen=True)
class BaselineConfig(ValueConfig):
    """Value-baseline defaults: value lr 1e−3, one value step per iteration. `lam` is fixed to 1
    (A_t = RTG_t − V(s_t)) whatever its value here."""

    lam: float = 1.0


@dataclasses.dataclass(frozen=True)
class GAEConfig(ValueConfig):
    """GAE defaults: λ = 0.9 (hypergrid, (c) code; 0.7 for sequences), lr 1e−3, value lr 1e−3
    (assumed), one value step per iteration, no advantage normalisation (c)."""


@dataclasses.dataclass(frozen=True)
class GAESubTBConfig(GAEConfig):
    """GAE with a SubTB-trained log-flow value: subtb_lam = 0.9 as for SubTB (REFERENCE.md §1)."""

    subtb_lam: float = 0.9

    SWEEPABLE: ClassVar[tuple[str, ...]] = GAEConfig.SWEEPABLE + ("subtb_lam",)

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "subtb_lam", 0.0, None, lo_open=True)


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

    def resolve_hparams(self, hparams):
        hp = super().resolve_hparams(hparams)
        hp["lam"] = jnp.ones_like(hp["lam"])  # the value baseline is GAE with λ = 1
        return hp


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
