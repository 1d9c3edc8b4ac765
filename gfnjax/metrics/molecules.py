"""Molecule metrics of the molecular environments (`molgraph`, `fragments`), evaluated inside the
jitted training loop (docs/methods.md §4–5).

They use only the environment's declared molecule capabilities (gfnjax.envs.base:
`molecule_arrays`, `host_molecules`, `score_name`, `log_reward_from_score`, `mode_threshold`,
`top_k`, `test_set`). RDKit work (molecule, canonical SMILES, score, Morgan fingerprint and, at
evaluations, SA score and structural alerts) happens in one `jax.pure_callback` per batch, cached
by SMILES; everything else is jnp, so the metric carries live on device and vmap over seeds.

Every training iteration (`update`, on the batch's terminal states):
  modes       a sampled molecule becomes a mode when its score s(x) ≥ env.mode_threshold and its
              Tanimoto similarity (Morgan r=2, 1024 bits) to every earlier mode is < 0.7;
              molecules are scanned in sampling order, so the count is the number of
              Tanimoto-separated modes *discovered* so far (at most MAX_MODES).
  top-k       the k = env.top_k (100) best distinct molecules (canonical-SMILES hash) so far:
              top_k_score = mean s, top_k_reward = mean R = mean exp(log R(s)) over them.
At every evaluation (`compute`, on a fresh batch of `eval_batch_size` forward samples):
  validity    fraction of samples RDKit accepts (1 by construction; anything else is a bug);
  uniqueness  distinct canonical SMILES / samples;
  novelty     fraction of valid samples absent from RDKit's shipped NCI sample
              (`chem.nci_molecules`, ~5000 molecules);
  diversity   internal diversity = 1 − mean_{i ≠ j} Tanimoto(fp_i, fp_j) over the valid samples
              (duplicates included, so a collapsed sampler scores low);
  mean_score  mean s(x) of the valid samples; mean_sa: mean SA score ∈ [1, 10] (RDKit Contrib
              sascorer; lower = easier to make);
  filter_pass fraction of valid samples matching no PAINS (A/B/C) or Brenk alert (RDKit
              FilterCatalog);
  pearson, spearman   correlation between log R(x) and the Monte-Carlo estimate
              log P_θ(x) ≈ logmeanexp_i [log P_F(τ_i) − log P_B(τ_i|x)], τ_i ~ P_B(·|x)
              (env.num_test_trajectories each) on env.test_set(), with the one tie-aware
              implementation of gfnjax.metrics.stats; test_log_prob = mean log P_θ(x).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gfnjax.envs import chem
from gfnjax.metrics.base import Metric
from gfnjax.metrics.stats import pearson, spearman
from gfnjax.rollout import evaluate, sample_backward, sample_forward
from gfnjax.utils import logmeanexp

TANIMOTO_MAX = 0.7  # mode separation threshold (docs/methods.md §4)
MAX_MODES = 1024  # capacity of the on-device mode buffer


@functools.lru_cache(maxsize=1)
def nci_reference() -> frozenset:
    return frozenset(chem.nci_molecules())


def _host_describe(compute, *arrays, env, full: bool):
    shape = compute.shape
    arrays = [np.asarray(a).reshape((-1,) + a.shape[len(shape) :]) for a in arrays]
    compute = np.asarray(compute, bool).reshape(-1)
    rows = np.nonzero(compute)[0]
    entries = env.host_molecules(tuple(a[rows] for a in arrays))
    part = chem.describe_entries(entries, env.score_name, full, nci_reference())
    outs = []
    for x in part:
        full_x = np.zeros(compute.shape + x.shape[1:], x.dtype)
        if x.dtype == np.int32:
            full_x[:] = -1
        full_x[rows] = x
        outs.append(full_x.reshape(shape + x.shape[1:]))
    return tuple(outs)


def describe(env, state, full: bool = False):
    """(ok bool[B], score float32[B], hash int32[B], fp uint32[B, 32], novel bool[B],
    sa float32[B], clean bool[B]) of states; novel/sa/clean are zeros unless `full`."""
    arrays = env.molecule_arrays(state)
    compute = ~env.is_initial(state)
    shape = compute.shape
    out = (
        jax.ShapeDtypeStruct(shape, jnp.bool_),
        jax.ShapeDtypeStruct(shape, jnp.float32),
        jax.ShapeDtypeStruct(shape, jnp.int32),
        jax.ShapeDtypeStruct(shape + (chem.FP_WORDS,), jnp.uint32),
        jax.ShapeDtypeStruct(shape, jnp.bool_),
        jax.ShapeDtypeStruct(shape, jnp.float32),
        jax.ShapeDtypeStruct(shape, jnp.bool_),
    )
    host = functools.partial(chem.timed(_host_describe), env=env, full=full)
    return jax.pure_callback(host, out, compute, *arrays, vmap_method="broadcast_all")


def tanimoto(fp: jax.Array, fps: jax.Array) -> jax.Array:
    """Tanimoto similarity of packed fingerprints: uint32[W] vs uint32[M, W] -> float32[M]."""
    inter = jax.lax.population_count(fp[None] & fps).sum(-1)
    union = jax.lax.population_count(fp[None] | fps).sum(-1)
    return jnp.where(union > 0, inter / jnp.maximum(union, 1), 0.0).astype(jnp.float32)


def internal_diversity(ok: jax.Array, fp: jax.Array) -> jax.Array:
    """1 − mean_{i ≠ j, both ok} Tanimoto(fp_i, fp_j); 0 with fewer than 2 valid samples."""
    sim = jax.vmap(tanimoto, in_axes=(0, None))(fp, fp)  # [n, n]
    pair = ok[:, None] & ok[None, :] & ~jnp.eye(ok.shape[0], dtype=bool)
    n_pairs = pair.sum()
    mean_sim = jnp.where(pair, sim, 0.0).sum() / jnp.maximum(n_pairs, 1)
    return jnp.where(n_pairs > 0, 1.0 - mean_sim, 0.0)


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


class MoleculeMetrics(Metric):
    """Modes, top-k, validity/uniqueness/novelty/diversity/SA/filters and test-set correlation;
    see the module docstring."""

    def __init__(self, env, eval_batch_size: int):
        self.env = env
        self.eval_batch_size = eval_batch_size
        test = env.test_set()
        self.test_state = None if test is None else jax.tree.map(np.asarray, test)
        self.test_log_reward = None
        if test is not None:
            self.test_log_reward = np.asarray(env.log_reward(test))  # host, once

    def init(self):
        k = self.env.top_k
        return dict(
            modes=jnp.zeros((MAX_MODES, chem.FP_WORDS), jnp.uint32),
            num_modes=jnp.zeros((), jnp.int32),
            top_score=jnp.full((k,), -jnp.inf, jnp.float32),
            top_hash=jnp.full((k,), -1, jnp.int32),
        )

    def update(self, carry, info):
        ok, score, hash_, fp, *_ = describe(self.env, info.terminals)
        modes, num = add_modes(
            carry["modes"], carry["num_modes"], ok, score, fp, self.env.mode_threshold
        )
        top_score, top_hash = merge_top_k(carry["top_score"], carry["top_hash"], ok, score, hash_)
        return dict(modes=modes, num_modes=num, top_score=top_score, top_hash=top_hash)

    def correlation(self, policy, key):
        env, M = self.env, self.env.num_test_trajectories
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
        log_w = jnp.where(traj.mask, log_pf - traj.log_pb, 0.0).sum(-1).reshape(-1, M)
        log_p = logmeanexp(log_w, axis=-1)
        log_r = jnp.asarray(self.test_log_reward)
        return {
            "pearson": pearson(log_r, log_p),
            "spearman": spearman(log_r, log_p),
            "test_log_prob": log_p.mean(),
        }

    def compute(self, carry, algo, state, key):
        k_f, k_b = jax.random.split(key)
        policy = algo.policy_fn(state)
        traj = sample_forward(self.env, k_f, policy, self.eval_batch_size)
        ok, score, hash_, fp, novel, sa, clean = describe(self.env, traj.final_state, full=True)
        n = ok.shape[0]
        h = jnp.sort(jnp.where(ok, hash_, -1))
        distinct = jnp.sum((h[1:] != h[:-1]) & (h[1:] >= 0)) + (h[0] >= 0)
        n_ok = jnp.maximum(ok.sum(), 1)
        finite = jnp.isfinite(carry["top_score"])
        n_top = jnp.maximum(finite.sum(), 1)
        top_s = jnp.where(finite, carry["top_score"], 0.0)
        top_r = jnp.exp(self.env.log_reward_from_score(top_s))

        def mean_ok(x):
            return jnp.where(ok, x, 0).sum() / n_ok

        out = {
            "modes": carry["num_modes"].astype(jnp.float32),
            "validity": ok.mean(),
            "uniqueness": distinct / n,
            "novelty": mean_ok(novel),
            "diversity": internal_diversity(ok, fp),
            "mean_score": mean_ok(score),
            "mean_sa": mean_ok(sa),
            "filter_pass": mean_ok(clean),
            "top_k_score": jnp.where(finite, top_s, 0.0).sum() / n_top,
            "top_k_reward": jnp.where(finite, top_r, 0.0).sum() / n_top,
        }
        if self.test_state is not None:
            out.update(self.correlation(policy, k_b))
        return out


def top_samples(env, policy, key, num_samples: int = 256, n: int = 16):
    """Sample `num_samples` molecules; return the n best distinct as (SMILES list, score list)."""
    traj = jax.jit(lambda k: sample_forward(env, k, policy, num_samples))(key)
    x = jax.device_get(traj.final_state)
    entries = [e for e in env.host_molecules(env.molecule_arrays(x)) if e is not None]
    found = dict(zip((s for s, _ in entries), chem.score_entries(entries, env.score_name)))
    best = sorted(found.items(), key=lambda kv: -kv[1])[:n]
    return [s for s, _ in best], [float(v) for _, v in best]


def draw_top_samples(env, policy, key, path: str, num_samples: int = 256, n: int = 16):
    """Report helper: RDKit grid image (PNG) of the n best distinct sampled molecules, legends
    with the score, SA and alerts. Returns (path, smiles, rule violations per molecule)."""
    from rdkit import Chem

    smiles, scores = top_samples(env, policy, key, num_samples, n)
    legends = [
        f"{env.score_name}={v:.3f} SA={chem.mol_property('sa', s):.1f} "
        f"alerts={chem.mol_property('alerts', s):.0f}"
        for s, v in zip(smiles, scores)
    ]
    violations = [chem.rule_violations(Chem.MolFromSmiles(s)) for s in smiles]
    return chem.draw_grid(smiles, legends, path), smiles, violations
