"""Published settings per (algorithm, environment): `algos.make(name, env)` starts from these.

A preset is a named set of config values with the file of the authors' code it comes from. Each
(algorithm, environment) pair has a default preset (the first listed, which `preset="auto"`
applies) and may offer others, e.g. Ent-PPO's on-policy TB baseline, Tiapkin et al.'s TB with a
learned P_B and gfnx's exploring TB on hypergrid. A pair with no published setting runs the config
defaults, and says so. docs/presets.md is generated from this module
(`python -m gfnjax.algos.presets`), so code and docs cannot disagree.

Sources (repository, the paper it belongs to):
  Ent-PPO  tgritsaev/ent-ppo      Zykova-Myzina, Gritsaev, Tiapkin, Morozov 2026
  Niu      niupuhua1234/GFN-PG    Niu et al. 2024 (ICML)
  Tiapkin  d-tiapkin/gflownet-rl  Tiapkin, Morozov, Naumov, Vetrov 2024 (AISTATS)
  gfnx     d-tiapkin/gfnx         the gfnx library's baseline configs

Deliberate differences kept everywhere (docs/presets.md): gfnjax's networks start with
zero-initialised heads (`output_init="default"` gives the frameworks' initialiser), transformers
have no dropout, and Niu et al.'s presets keep 16 trajectories per iteration on the 20^4 grid (they
publish 128 on a 256² grid only).
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Preset:
    """name: preset id; values: config field -> value; source: where the values come from;
    when: environment option -> required value (e.g. QM9-string's variant)."""

    name: str
    values: dict[str, Any]
    source: str
    when: dict[str, Any] = dataclasses.field(default_factory=dict)

    def applies_to(self, env: Any) -> bool:
        return all(getattr(env, k, None) == v for k, v in self.when.items())

    def as_record(self) -> dict[str, Any]:
        return {"name": self.name, "values": dict(self.values), "source": self.source}


NONE = Preset("defaults", {}, "no published setting (config defaults)")

# --- shared value sets ----------------------------------------------------------------------
EP = "Ent-PPO gfnx/baselines/configs/{}_{}.yaml"
NIU_NET = dict(hidden=(256, 256, 256, 256))
NIU_NETS = dict(NIU_NET, value_hidden=(256, 256))
NIU = dict(
    NIU_NETS,
    lam=0.99,
    value_target_lam=1.0,
    value_lr=5e-3,
    value_average="trajectories",
    advantage_norm="center",
    lr=1e-3,
    lr_log_z=0.1,
)
NIU_PB = dict(pb="learned", pb_torso="separate", pb_lr=1e-3, pb_lr_decay=1.0)
NIU_HG = "Niu gfn-pg/train.py + Config.py + losses/trajectory_RL.py (run on 256², 128 trajectories)"
NIU_QM9 = dict(variant="any_position")
NIU_QM9_SRC = "Niu gfn-pg/train_G.py --Env qm9str + Config.py (any-position, 128 trajectories)"
TIA_HG = "Tiapkin hypergrid/experiments/config/algo.py + train_softdqn.py"
TIA_HG_FLOW = "Tiapkin hypergrid/experiments/config/algo.py (learned P_B tied to the torso)"
TIA_SEQ = "Tiapkin bitseq/run.py + README runs (lr 2e-3, leaf_coeff 2)"
TIA_SEQ_COMMON = dict(
    lr=2e-3, weight_decay=1e-5, epsilon=1e-3, epsilon_final=1e-3, torso="transformer"
)
SOFT_RL_SEQ = dict(
    TIA_SEQ_COMMON,
    polyak=1.0,
    target_every=5,
    per_alpha=0.9,
    importance_weights=True,
    per_beta=0.1,
    per_beta_final=0.1,
    per_beta_iterations=0,
    learning_starts=50,
    leaf_coeff=2.0,
    new_priority="max",
)
TRPO_EP = dict(
    lam=0.7,
    value_target_lam=None,
    value_lr=3e-4,
    value_epochs=4,
    value_minibatches=2,
    value_targets="fixed",
    value_average="transitions",
    advantage_norm="center",
    hidden=(256, 256),
    value_hidden=(),
    backtrack_iters=10,
    line_search="ent-ppo",
)
TRPO_NIU = dict({k: v for k, v in NIU.items() if k != "lr"}, backtrack_iters=20, line_search="niu")
QM9_PA = dict(variant="prepend_append")


def _p(name: str, source: str, when: dict | None = None, **values) -> Preset:
    return Preset(name, values, source, dict(when or {}))


PRESETS: dict[tuple[str, str], list[Preset]] = {
    # ---- hypergrid 20^4 (Ent-PPO: on-policy, uniform P_B; Tiapkin et al.: learned P_B) ----
    ("tb", "hypergrid"): [
        _p("ent-ppo", EP.format("tb", "hypergrid"), lr=1e-3, lr_log_z=0.1),
        _p("tiapkin", TIA_HG_FLOW, lr=1e-3, lr_log_z=0.1, pb="learned"),
        _p(
            "gfnx",
            "gfnx baselines/configs/tb_hypergrid.yaml (ε 0.1 → 0 over 30k iterations)",
            lr=1e-3,
            lr_log_z=0.1,
            pb="learned",
            epsilon=0.1,
            epsilon_final=0.0,
            epsilon_decay_iterations=30_000,
        ),
    ],
    ("db", "hypergrid"): [
        _p("ent-ppo", EP.format("db", "hypergrid"), lr=1e-3, average="transitions"),
        _p("tiapkin", TIA_HG_FLOW, lr=1e-3, pb="learned"),
    ],
    ("subtb", "hypergrid"): [
        _p("ent-ppo", EP.format("subtb", "hypergrid"), lr=1e-3, lam=0.9),
        _p("tiapkin", TIA_HG_FLOW, lr=1e-3, lam=0.9, pb="learned"),
    ],
    ("vpg", "hypergrid"): [_p("ent-ppo", EP.format("vanilla_pg", "hypergrid"), lr=1e-3)],
    ("rtg", "hypergrid"): [_p("ent-ppo", EP.format("RTG_pg", "hypergrid"), lr=1e-3)],
    ("v_baseline", "hypergrid"): [
        _p(
            "ent-ppo",
            EP.format("v_baseline", "hypergrid"),
            lr=1e-3,
            value_lr=1e-3,
            value_epochs=2,
            value_minibatches=1,
        )
    ],
    ("gae", "hypergrid"): [
        _p(
            "ent-ppo",
            EP.format("GAE", "hypergrid"),
            lr=1e-3,
            value_lr=1e-3,
            lam=0.9,
            value_epochs=1,
            value_minibatches=1,
            value_targets="recomputed",
        )
    ],
    ("gae_subtb", "hypergrid"): [
        _p(
            "ent-ppo",
            EP.format("GAE_subeb", "hypergrid"),
            lr=1e-3,
            value_lr=1e-3,
            lam=0.7,
            subtb_lam=0.9,
        )
    ],
    ("ppo", "hypergrid"): [
        _p(
            "ent-ppo",
            EP.format("PPO", "hypergrid"),
            lr=1e-3,
            value_lr=3e-4,
            lam=0.7,
            policy_epochs=4,
            value_epochs=4,
            value_minibatches=2,
            value_targets="recomputed",
            clip_eps=0.2,
            kl_coef=1.0,
            pb_lr=1e-3,
            pb_steps=4,
            pb_lr_decay=0.999,
        )
    ],
    ("trpo", "hypergrid"): [
        _p("ent-ppo", EP.format("TRPO", "hypergrid"), **TRPO_EP),
        _p(
            "niu",
            "Niu gfn-pg/losses/trajectory_TRPO.py (run on 256², 128 trajectories)",
            **TRPO_NIU,
        ),
    ],
    ("rl_u", "hypergrid"): [_p("niu", NIU_HG, **NIU)],
    ("rl_b", "hypergrid"): [_p("niu", NIU_HG, **NIU, **NIU_PB)],
    ("rl_g", "hypergrid"): [_p("niu", NIU_HG, **NIU, **NIU_PB)],
    ("soft_dqn", "hypergrid"): [_p("tiapkin", TIA_HG)],
    ("mdqn", "hypergrid"): [_p("tiapkin", TIA_HG, munchausen_alpha=0.15, munchausen_l0=-100.0)],
    # ---- bit sequences (Tiapkin et al.; the behaviour policy of their M-DQN is softmax(Q),
    #      i.e. temperature 1 − α on gfnjax's softmax(Q/τ)) ----
    ("tb", "bitseq"): [
        _p(
            "tiapkin",
            TIA_SEQ + " (64-vector log Z summed = lr_log_z 0.064)",
            **TIA_SEQ_COMMON,
            lr_log_z=0.064,
        )
    ],
    ("db", "bitseq"): [_p("tiapkin", TIA_SEQ, **TIA_SEQ_COMMON)],
    ("subtb", "bitseq"): [_p("tiapkin", TIA_SEQ, **TIA_SEQ_COMMON, lam=1.9)],
    ("soft_dqn", "bitseq"): [_p("tiapkin", TIA_SEQ, **SOFT_RL_SEQ)],
    ("mdqn", "bitseq"): [
        _p(
            "tiapkin",
            TIA_SEQ,
            **SOFT_RL_SEQ,
            munchausen_alpha=0.15,
            munchausen_l0=-25.0,
            temperature=0.85,
        )
    ],
    # ---- QM9-string, prepend/append (Ent-PPO's qm9_small configs) ----
    ("tb", "qm9str"): [
        _p("ent-ppo", EP.format("tb", "qm9_small"), QM9_PA, lr=3e-4, lr_log_z=0.1),
        _p("niu", NIU_QM9_SRC, NIU_QM9, lr=1e-3, lr_log_z=0.1, batch_size=128, **NIU_NET),
    ],
    ("db", "qm9str"): [
        _p("ent-ppo", EP.format("db", "qm9_small"), QM9_PA, lr=3e-4),
        _p("niu", NIU_QM9_SRC, NIU_QM9, lr=1e-3, batch_size=128, **NIU_NET),
    ],
    ("subtb", "qm9str"): [
        _p("ent-ppo", EP.format("subtb", "qm9_small"), QM9_PA, lr=3e-4, lam=0.9),
        _p(
            "niu",
            NIU_QM9_SRC + " (SubTB λ = the GAE λ 0.99)",
            NIU_QM9,
            lr=1e-3,
            lam=0.99,
            batch_size=128,
            **NIU_NET,
        ),
    ],
    ("vpg", "qm9str"): [_p("ent-ppo", EP.format("vanilla_pg", "qm9_small"), QM9_PA, lr=3e-4)],
    ("rtg", "qm9str"): [_p("ent-ppo", EP.format("RTG_pg", "qm9_small"), QM9_PA, lr=3e-4)],
    ("v_baseline", "qm9str"): [
        _p(
            "ent-ppo",
            EP.format("v_baseline", "qm9_small"),
            QM9_PA,
            lr=3e-4,
            value_lr=3e-4,
            value_epochs=2,
            value_minibatches=1,
        )
    ],
    ("gae", "qm9str"): [
        _p(
            "ent-ppo",
            EP.format("GAE", "qm9_small"),
            QM9_PA,
            lr=3e-4,
            value_lr=1e-4,
            lam=0.7,
            value_epochs=4,
            value_minibatches=2,
            value_targets="recomputed",
        )
    ],
    ("gae_subtb", "qm9str"): [
        _p(
            "ent-ppo",
            EP.format("GAE_subeb", "qm9_small"),
            QM9_PA,
            lr=3e-4,
            value_lr=1e-3,
            lam=0.7,
            subtb_lam=0.9,
        )
    ],
    ("ppo", "qm9str"): [
        _p(
            "ent-ppo",
            EP.format("PPO", "qm9_small"),
            QM9_PA,
            lr=3e-4,
            value_lr=1e-4,
            lam=0.7,
            policy_epochs=2,
            value_epochs=4,
            value_minibatches=2,
            value_targets="recomputed",
            pb_lr=3e-5,
            pb_steps=4,
            pb_lr_decay=0.999,
        )
    ],
    ("trpo", "qm9str"): [
        _p("ent-ppo", EP.format("TRPO", "qm9_small"), QM9_PA, **dict(TRPO_EP, value_lr=1e-4)),
        _p("niu", NIU_QM9_SRC, NIU_QM9, **TRPO_NIU, batch_size=128, log_reward_min=-12.0),
    ],
    # ---- QM9-string, any position (Niu et al.; their RL-G guide is a replay-reward guide,
    #      gfnjax's qm9str guide is its own, see gfnjax.algos.guides) ----
    ("rl_u", "qm9str"): [
        _p("niu", NIU_QM9_SRC, NIU_QM9, **NIU, batch_size=128, log_reward_min=-12.0)
    ],
    ("rl_b", "qm9str"): [
        _p("niu", NIU_QM9_SRC, NIU_QM9, **NIU, **NIU_PB, batch_size=128, log_reward_min=-12.0)
    ],
    ("rl_g", "qm9str"): [
        _p(
            "niu",
            NIU_QM9_SRC + " (their guide: replay rewards; here gfnjax's guide)",
            NIU_QM9,
            **NIU,
            **NIU_PB,
            batch_size=128,
            log_reward_min=-12.0,
        )
    ],
    # ---- molecules: the Ent-PPO molecule code's PPO settings (their environment is the sEH
    #      fragment MDP; gfnjax's molgraph is a different, atom-level environment) ----
    ("ppo", "molgraph"): [
        _p(
            "defaults",
            "no published setting for this environment (the Ent-PPO molecule code's "
            "PPO settings are the 'ent-ppo-mols' preset)",
        ),
        _p(
            "ent-ppo-mols",
            "Ent-PPO mols/src/gflownet/algo/config.py + scripts/run_single_seh_metrics.py "
            "(settings of their sEH/QM9 molecule runs, another environment)",
            lr=1e-4,
            value_lr=1e-4 / 3,
            lam=0.7,
            policy_epochs=4,
            value_epochs=4,
            value_minibatches=8,
            value_targets="fixed",
            clip_grad_norm=10.0,
        ),
    ],
}


def presets_for(algo: str, env: Any) -> list[Preset]:
    """The presets of (algo, env) whose environment conditions hold (default first)."""
    return [p for p in PRESETS.get((algo, env.name), []) if p.applies_to(env)]


def resolve(algo: str, env: Any, preset: str = "auto") -> Preset:
    """ "auto" = the pair's default (first applicable) or NONE; "defaults" = NONE; any other name
    must be one of the pair's presets."""
    options = presets_for(algo, env)
    if preset == "auto":
        return options[0] if options else NONE
    if preset == "defaults":
        return NONE
    named = {p.name: p for p in options}
    if preset not in named:
        raise ValueError(
            f"unknown preset {preset!r} for {algo} on {env.name}; valid: "
            f"{['auto', 'defaults', *named]}"
        )
    return named[preset]


def table() -> str:
    """Markdown table algorithm × environment → preset(s) and source (docs/presets.md)."""
    rows = ["| algorithm | environment | preset | values | source |", "|---|---|---|---|---|"]
    seen_default: set[tuple] = set()
    for (algo, env), options in sorted(PRESETS.items()):
        for p in options:
            key = (algo, env, tuple(sorted(p.when.items())))
            tag = "" if key in seen_default else " (default)"
            seen_default.add(key)
            cond = "".join(f" ({k}={v})" for k, v in p.when.items())
            vals = ", ".join(f"{k}={v}" for k, v in p.values.items()) or "(config defaults)"
            rows.append(f"| {algo} | {env}{cond} | {p.name}{tag} | {vals} | {p.source} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
