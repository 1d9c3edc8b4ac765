"""A small transformer encoder torso for sequence environments (the "transformer" torso).

The observation float[..., L·F] is reshaped with the environment's static `token_shape = (L, F)`
into L tokens of F features; each token is embedded by a Dense layer plus a learned positional
embedding, passed through pre-LayerNorm encoder blocks (self-attention + MLP, residual), then the
tokens are flattened and read out by Dense(hidden[-1]) + ReLU, which the PolicyNet heads consume.

Defaults follow gfnx's bit-sequence network (d-tiapkin/gfnx baselines/configs/tb_bitseq.yaml:
3 layers, 8 heads, embedding 64, MLP width 64), without dropout (deterministic training loop).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn


class EncoderBlock(nn.Module):
    num_heads: int
    mlp_dim: int

    @nn.compact
    def __call__(self, h):
        y = nn.LayerNorm()(h)
        h = h + nn.MultiHeadDotProductAttention(num_heads=self.num_heads)(y, y)
        y = nn.LayerNorm()(h)
        y = nn.Dense(h.shape[-1])(nn.gelu(nn.Dense(self.mlp_dim)(y)))
        return h + y


class TransformerTorso(nn.Module):
    """float[..., L·F] -> float[..., hidden[-1]]."""

    token_shape: tuple[int, int]
    hidden: Sequence[int] = (256,)
    d_model: int = 64
    num_layers: int = 3
    num_heads: int = 8
    mlp_dim: int = 64

    @nn.compact
    def __call__(self, obs):
        L, F = self.token_shape
        x = obs.reshape(obs.shape[:-1] + (L, F))
        pos = self.param("pos_embedding", nn.initializers.normal(0.02), (L, self.d_model))
        h = nn.Dense(self.d_model)(x) + pos
        for _ in range(self.num_layers):
            h = EncoderBlock(self.num_heads, self.mlp_dim)(h)
        h = nn.LayerNorm()(h)
        h = h.reshape(h.shape[:-2] + (L * self.d_model,))
        return nn.relu(nn.Dense(self.hidden[-1])(h))


def make_transformer_torso(hidden: Sequence[int], env=None, **kwargs) -> TransformerTorso:
    """Torso factory for `gfnjax.nets.make_torso`; needs an env with a static `token_shape`."""
    token_shape = None if env is None else env.token_shape
    if token_shape is None:
        raise ValueError(
            "the 'transformer' torso needs an environment that declares `token_shape` (sequence "
            f"environments do); got {type(env).__name__}"
        )
    return TransformerTorso(token_shape=tuple(token_shape), hidden=tuple(hidden), **kwargs)


__all__ = ["EncoderBlock", "TransformerTorso", "make_transformer_torso"]
