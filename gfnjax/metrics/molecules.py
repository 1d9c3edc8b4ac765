"""Molecule metrics for `molgraph`, evaluated inside the jitted training loop
(docs/methods.md §4–5).

RDKit work (canonical SMILES, score, Morgan fingerprint) happens in one `jax.pure_callback` per
batch (`chem.describe_graphs`, cached by SMILES); everything else is jnp, so the metric carries
live on device and vmap over seeds.

Every training iteration (`update`, on the batch's terminal states):
  modes     a sampled molecule becomes a mode when score ≥ env.mode_threshold and its Tanimoto
            similarity (Morgan r=2, 1024 bits) to every earlier mode is < 0.7; molecules are
            scanned in sampling order, so the count is the number of modes *discovered*.
  top-k     the k best distinct molecules (by canonical-SMILES hash) sampled so far:
            top_k_score = mean score, top_k_reward = mean R = mean exp(log R(score)).
At every evaluation (`compute`, on a fresh batch of `eval_batch_size` forward samples):
  validity  fraction of samples RDKit accepts (1 by construction; anything else is a bug);
  uniqueness distinct canonical SMILES / samples;
  novelty   fraction of valid samples absent from the reference set (the filtered RDKit NCI
            sample, `chem.reference_molecules`);
  mean_score mean score of the samples;
  pearson, spearman   correlation between log R(x) and the Monte-Carlo estimate
            log P_θ(x) ≈ logmeanexp_i [log P_F(τ_i) − log P_B(τ_i|x)], τ_i ~ P_B(·|x)
            (`rollout.sample_backward`, env.mc_samples each), on a fixed held-out test set: the
            first env.test_size molecules of the reference set in a seeded random order, each as
            the labelled graph of `chem.mol_to_graph` (docs/methods.md §5).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gfnjax.envs import chem
from gfnjax.envs.molgraph import state_from_smiles
from gfnjax.metrics.base import Metric
from gfnjax.metrics.stats import pearson, spearman
from gfnjax.rollout import evaluate, sample_backward, sample_forward
from gfnjax.utils import logmeanexp

TANIMOTO_MAX = 0.7  # mode novelty threshold (docs/methods.md §4)
MAX_MODES = 1024  # capacity of the on-device mode buffer


def describe(env, state):
    """(ok bool[B], score float32[B], hash int32[B], fp uint32[B, 32], novel bool[B]) of states."""
    ref = frozenset(chem.reference_molecules(env.elements, env.max_atoms))
    host = functools.partial(
        chem.timed(chem.describe_graphs), elements=env.elements, score=env.score, reference=ref
    )
    shape = state.done.shape
    out = (
        jax.ShapeDtypeStruct(shape, jnp.bool_),
        jax.ShapeDtypeStruct(shape, jnp.float32),
        jax.ShapeDtypeStruct(shape, jnp.int32),
        jax.ShapeDtypeStruct(shape + (chem.FP_WORDS,), jnp.uint32),
        jax.ShapeDtypeStruct(shape, jnp.bool_),
    )
    compute = env.num_atoms(state) >= 1
    return jax.pure_callback(
        host, out, state.atoms, state.bonds, compute, vmap_method="broadcast_all"
    )


def tanimoto(fp: jax.Array, fps: jax.Array) -> jax.Array:
    """Tanimoto similarity of packed fingerprints: uint32[W] vs uint32[M, W] -> float32[M]."""
    inter = jax.lax.population_count(fp[None] & fps).sum(-1)
    union = jax.lax.population_count(fp[None] | fps).sum(-1)
    return jnp.where(union > 0, inter / jnp.maximum(union, 1), 0.0).astype(jnp.float32)


def add_modes(modes, count, ok, score, fp, threshold):
    """Scan candidates in order; append those with score ≥ threshold and max Tanimoto < 0.7."""
    M = modes.shape[0]

    def body(b, carry):
        modes, count = carry
        sim = jnp.where(jnp.arange(M) < count, tanimoto(fp[b], modes), 0.0)
        new = ok[b] & (score[b] >= threshold) & (sim.max() < TANIMOTO_MAX) & (count < M)
        modes = jnp.where(new, modes.at[jnp.minimum(count, M - 1)].set(fp[b]), modes)
        return modes, count + new.astype(jnp.int32)

    return jax.lax.fori_loop(0, ok.shape[0], body, (modes, count))


def merge_top_k(top_score, top_hash, ok, score, hash_):
    """Keep the k best distinct molecules (by hash); empty slots hold score −inf."""
    k = top_score.shape[0]
    s = jnp.concatenate([top_score, jnp.where(ok, score, -jnp.inf)])
    h = jnp.concatenate([top_hash, jnp.where(ok, hash_, -1)])
    n = s.shape[0]
    earlier = jnp.tril(jnp.ones((n, n), bool), k=-1)
    dup = jnp.any(earlier & (h[:, None] == h[None, :]) & jnp.isfinite(s)[None, :], axis=1)
    s = jnp.where(dup, -jnp.inf, s)
    top, idx = jax.lax.top_k(s, k)
    return top, h[idx]


def test_set_smiles(env) -> tuple[str, ...]:
    """The fixed held-out test set: env.test_size reference molecules in a seeded order."""
    ref = list(chem.reference_molecules(env.elements, env.max_atoms))
    order = np.random.default_rng(0).permutation(len(ref))
    return tuple(ref[i] for i in order[: env.test_size])


class MoleculeMetrics(Metric):
    """Modes, top-k, validity/uniqueness/novelty and test-set correlation; see module docstring."""

    def __init__(self, env, eval_batch_size: int):
        self.env = env
        self.eval_batch_size = eval_batch_size
        self.test_smiles = test_set_smiles(env)
        self.test_state = None
        self.test_log_reward = None
        if len(self.test_smiles) >= 3:
            st = state_from_smiles(env, self.test_smiles)
            self.test_state = jax.tree.map(np.asarray, st)
            self.test_log_reward = np.asarray(env.log_reward(st))  # host, once

    def init(self):
        k = self.env.top_k
        return dict(
            modes=jnp.zeros((MAX_MODES, chem.FP_WORDS), jnp.uint32),
            num_modes=jnp.zeros((), jnp.int32),
            top_score=jnp.full((k,), -jnp.inf, jnp.float32),
            top_hash=jnp.full((k,), -1, jnp.int32),
        )

    def update(self, carry, info):
        x = info.terminals
        ok, score, hash_, fp, _ = describe(self.env, x)
        modes, num = add_modes(
            carry["modes"], carry["num_modes"], ok, score, fp, self.env.mode_threshold
        )
        top_score, top_hash = merge_top_k(carry["top_score"], carry["top_hash"], ok, score, hash_)
        return dict(modes=modes, num_modes=num, top_score=top_score, top_hash=top_hash)

    def correlation(self, policy, key):
        env, M = self.env, self.env.mc_samples
        x = jax.tree.map(lambda a: jnp.repeat(jnp.asarray(a), M, axis=0), self.test_state)
        uniform_pb = policy(jnp.zeros((1, env.obs_dim), jnp.float32))[1] is None
        if uniform_pb:
            # P_B needs no network: sample with dummy logits, then one batched P_F pass
            dummy = lambda obs: (jnp.zeros((obs.shape[0], env.num_actions), jnp.float32), None)
            traj = sample_backward(env, key, x, dummy)
            log_pf = evaluate(lambda obs: (*policy(obs), None), traj).log_pf
        else:
            traj = sample_backward(env, key, x, policy)
            log_pf = traj.log_pf
        log_w = (log_pf - traj.log_pb).sum(-1).reshape(-1, M)
        log_p = logmeanexp(log_w, axis=-1)
        log_r = jnp.asarray(self.test_log_reward)
        return {
            "pearson": pearson(log_r, log_p),
            "spearman": spearman(log_r, log_p),
            "test_log_p_mean": log_p.mean(),
        }

    def compute(self, carry, algo, state, key):
        k_f, k_b = jax.random.split(key)
        policy = algo.policy_fn(state)
        traj = sample_forward(self.env, k_f, policy, self.eval_batch_size)
        ok, score, hash_, _, novel = describe(self.env, traj.final_state)
        n = ok.shape[0]
        h = jnp.sort(jnp.where(ok, hash_, -1))
        distinct = jnp.sum((h[1:] != h[:-1]) & (h[1:] >= 0)) + (h[0] >= 0)
        n_ok = jnp.maximum(ok.sum(), 1)
        finite = jnp.isfinite(carry["top_score"])
        n_top = jnp.maximum(finite.sum(), 1)
        top_r = jnp.exp(self.env.log_reward_from_score(jnp.where(finite, carry["top_score"], 0.0)))
        out = {
            "modes": carry["num_modes"].astype(jnp.float32),
            "validity": ok.mean(),
            "uniqueness": distinct / n,
            "novelty": jnp.where(ok, novel, False).sum() / n_ok,
            "mean_score": jnp.where(ok, score, 0.0).sum() / n_ok,
            "top_k_score": jnp.where(finite, carry["top_score"], 0.0).sum() / n_top,
            "top_k_reward": jnp.where(finite, top_r, 0.0).sum() / n_top,
        }
        if self.test_state is not None:
            out.update(self.correlation(policy, k_b))
        return out


def top_samples(env, policy, key, num_samples: int = 256, n: int = 16):
    """Sample `num_samples` molecules, return the n best distinct as (SMILES, score) lists."""
    traj = jax.jit(lambda k: sample_forward(env, k, policy, num_samples))(key)
    x = jax.device_get(traj.final_state)
    found = {}
    for a, b in zip(x.atoms, x.bonds):
        mol = chem.graph_to_mol(a, b, env.elements)
        if mol is None:
            continue
        s = chem.canonical_smiles(mol)
        found[s] = chem.score_smiles(s, env.score, mol)
    best = sorted(found.items(), key=lambda kv: -kv[1])[:n]
    return [s for s, _ in best], [v for _, v in best]


def draw_top_samples(env, policy, key, path: str, num_samples: int = 256, n: int = 16) -> str:
    """Report helper: RDKit grid image (PNG) of the n best distinct sampled molecules."""
    smiles, scores = top_samples(env, policy, key, num_samples, n)
    legends = [f"{s}  {env.score}={v:.3f}" for s, v in zip(smiles, scores)]
    return chem.draw_grid(smiles, legends, path)
