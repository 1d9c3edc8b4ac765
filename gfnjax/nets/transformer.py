"""A small transformer encoder torso for sequence environments (the "transformer" torso).

The observation float[..., L·F] is reshaped with the environment's static `token_shape = (L, F)`
into L tokens of F features. When the environment declares token ids (`Env.token_vocab`,
`Env.token_ids`: every sequence environment), each token is embedded by a lookup table over its
id, as Tiapkin et al.'s (`nn.Embedding`) and gfnx's (`eqx.nn.Embedding`) bit-sequence
transformers do; otherwise by a Dense layer on its features. A Dense layer on bit sequences'
compact [filled, ±bits] features would give the 2^k words embeddings of rank k + 1, in which
words that differ by an XOR of bits (00 and 11 against 01 and 10) are not linearly separable;
the on-policy objectives then learned even a small bit-sequence environment very slowly
(tests/test_sequences.py trains the transformer on one). The token embedding plus a learned
positional embedding passes through pre-LayerNorm encoder blocks (self-attention + MLP,
residual).

Two read-outs:
  "tokens" (when the environment declares `action_tokens = (L, V)`, e.g. bit sequences: action =
      slot·V + word): the torso returns the L token features, and the policy heads score every
      (slot, symbol) action from its own token (`PolicyNet`, a Dense(V) shared across slots), as
      Tiapkin et al.'s and gfnx's bit-sequence transformers do. No L·d × A read-out matrix: the
      network is small (≈0.1M parameters for bit sequences) and its cost per state is the
      encoder's.
  "flat" (otherwise): the tokens are flattened and read out by Dense(hidden[-1]) + ReLU.

Defaults follow gfnx's bit-sequence network (baselines/configs/tb_bitseq.yaml: 3 layers, 8 heads,
embedding 64, MLP width 64), without dropout (the training loop is deterministic; Tiapkin et al.
use dropout 0.1). Other differences from both: learned positional embeddings (theirs are fixed
sinusoids), pre-LayerNorm blocks with GELU (Tiapkin et al.: PyTorch's post-LayerNorm with ReLU).
Attention projects q, k, v with one fused matrix (one matmul instead of three).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class SelfAttention(nn.Module):
    """Multi-head self-attention over the token axis: float[..., L, d] -> float[..., L, d]."""

    num_heads: int

    @nn.compact
    def __call__(self, x):
        d = x.shape[-1]
        heads, dh = self.num_heads, d // self.num_heads
        qkv = nn.Dense(3 * d, name="qkv")(x).reshape(x.shape[:-1] + (3, heads, dh))
        q, k, v = qkv[..., 0, :, :], qkv[..., 1, :, :], qkv[..., 2, :, :]
        logits = jnp.einsum("...qhd,...khd->...hqk", q, k) / math.sqrt(dh)
        out = jnp.einsum("...hqk,...khd->...qhd", jax.nn.softmax(logits, -1), v)
        return nn.Dense(d, name="out")(out.reshape(x.shape))


class EncoderBlock(nn.Module):
    num_heads: int
    mlp_dim: int

    @nn.compact
    def __call__(self, h):
        h = h + SelfAttention(self.num_heads)(nn.LayerNorm()(h))
        y = nn.LayerNorm()(h)
        return h + nn.Dense(h.shape[-1])(nn.gelu(nn.Dense(self.mlp_dim)(y)))


class TransformerTorso(nn.Module):
    """float[..., L·F] -> float[..., L·d_model] ("tokens") or float[..., hidden[-1]] ("flat").

    token_ids: obs float[..., L·F] -> int32[..., L] in [0, token_vocab) (the environment's
    `token_ids`), embedded by a lookup table; None: a Dense embedding of the F features."""

    token_shape: tuple[int, int]
    hidden: Sequence[int] = (256,)
    d_model: int = 64
    num_layers: int = 3
    num_heads: int = 8
    mlp_dim: int = 64
    readout: str = "flat"
    token_ids: Callable[[jax.Array], jax.Array] | None = None
    token_vocab: int | None = None

    @property
    def per_token(self) -> bool:
        return self.readout == "tokens"

    @nn.compact
    def __call__(self, obs):
        L, F = self.token_shape
        x = obs.reshape(obs.shape[:-1] + (L, F))
        pos = self.param("pos_embedding", nn.initializers.normal(0.02), (L, self.d_model))
        if self.token_ids is None:
            h = nn.Dense(self.d_model)(x) + pos
        else:
            h = nn.Embed(self.token_vocab, self.d_model)(self.token_ids(obs)) + pos
        for _ in range(self.num_layers):
            h = EncoderBlock(self.num_heads, self.mlp_dim)(h)
        h = nn.LayerNorm()(h)
        h = h.reshape(h.shape[:-2] + (L * self.d_model,))
        if self.per_token:
            return h
        return nn.relu(nn.Dense(self.hidden[-1])(h))


def make_transformer_torso(hidden: Sequence[int], env=None, **kwargs) -> TransformerTorso:
    """Torso factory for `gfnjax.nets.make_torso`; needs an env with a static `token_shape`;
    reads out per token when the env declares `action_tokens`."""
    token_shape = None if env is None else env.token_shape
    if token_shape is None:
        raise ValueError(
            "the 'transformer' torso needs an environment that declares `token_shape` (sequence "
            f"environments do); got {type(env).__name__}"
        )
    readout = "tokens" if env.action_tokens is not None else "flat"
    ids = dict(token_ids=env.token_ids, token_vocab=env.token_vocab) if env.token_vocab else {}
    return TransformerTorso(
        token_shape=tuple(token_shape), hidden=tuple(hidden), readout=readout, **ids, **kwargs
    )


__all__ = ["EncoderBlock", "SelfAttention", "TransformerTorso", "make_transformer_torso"]
