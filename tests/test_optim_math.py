"""The trust-region step against its closed form: with a linear loss gᵀx and a quadratic KL
½ xᵀHx, the full TRPO step is x* = −sqrt(2δ / gᵀH⁻¹g)·H⁻¹g (on the KL = δ boundary); with a
KL that grows faster than its quadratic model the line search must backtrack by the ratio until
KL ≤ δ; when no candidate passes, the step reverts (or keeps the last, smallest candidate).
(Conjugate gradient against numpy and TRPO on policies: tests/test_pg.py, tests/test_fidelity.py.)
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from gfnjax import optim

H = np.array([[3.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 1.0]])
G = np.array([1.0, -2.0, 0.5])
X0 = {"a": jnp.zeros(2), "b": jnp.zeros(1)}  # a pytree of parameters


def flat(p):
    return jnp.concatenate([p["a"], p["b"]])


def loss_fn(p):
    return jnp.dot(jnp.asarray(G, jnp.float32), flat(p))


def quad_kl(p):
    x = flat(p)
    return 0.5 * x @ jnp.asarray(H, jnp.float32) @ x


def natural_step(delta):
    d = np.linalg.solve(H, G)
    return -np.sqrt(2 * delta / (G @ d)) * d


def test_full_step_is_the_natural_gradient_step_on_the_trust_region_boundary():
    delta = 0.02
    # a slightly smaller trust region for acceptance, so that the full step passes despite rounding
    new, info = optim.trpo_step(
        loss_fn, quad_kl, X0, delta, cg_iters=3, accept_kl_fn=lambda p: quad_kl(p) * 0.999
    )
    x = np.asarray(flat(new), np.float64)
    np.testing.assert_allclose(
        x, natural_step(delta), rtol=1e-4, err_msg="x* = −sqrt(2δ / gᵀH⁻¹g)·H⁻¹g"
    )
    assert float(info["step_fraction"]) == 1.0 and float(info["accepted"]) == 1.0
    np.testing.assert_allclose(0.5 * x @ H @ x, delta, rtol=1e-4, err_msg="KL(full step) = δ")
    np.testing.assert_allclose(float(info["improvement"]), -(G @ x), rtol=1e-4)


def test_line_search_backtracks_until_the_kl_is_below_delta():
    """KL = ½xᵀHx + 40|x|³ exceeds its quadratic model: the accepted step is the first
    ratio^k·x* with KL ≤ δ."""
    delta, ratio = 0.02, 0.6

    def kl(p):
        x = flat(p)
        return quad_kl(p) + 40.0 * jnp.sum(jnp.abs(x)) ** 3

    new, info = optim.trpo_step(loss_fn, kl, X0, delta, cg_iters=3, backtrack_ratio=ratio)
    full = natural_step(delta)
    kl_np = lambda x: 0.5 * x @ H @ x + 40.0 * np.abs(x).sum() ** 3
    k = next(i for i in range(10) if kl_np(ratio**i * full) <= delta)
    assert k >= 1  # the cubic term makes the full step infeasible
    np.testing.assert_allclose(
        np.asarray(flat(new)), ratio**k * full, rtol=1e-4, err_msg="first ratio^k step with KL ≤ δ"
    )
    assert float(info["step_fraction"]) == pytest.approx(ratio**k, rel=1e-6)
    assert float(kl(new)) <= delta


def test_no_acceptable_candidate_reverts_or_keeps_the_smallest_step():
    delta, iters, ratio = 0.02, 4, 0.5
    never = lambda p: jnp.float32(1.0)  # every candidate violates the acceptance KL
    kwargs = dict(backtrack_iters=iters, backtrack_ratio=ratio, accept_kl_fn=never, cg_iters=3)
    new, info = optim.trpo_step(loss_fn, quad_kl, X0, delta, **kwargs)
    assert float(info["accepted"]) == 0.0
    np.testing.assert_array_equal(np.asarray(flat(new)), 0.0, err_msg="revert: params unchanged")
    new, _ = optim.trpo_step(loss_fn, quad_kl, X0, delta, revert_on_failure=False, **kwargs)
    np.testing.assert_allclose(
        np.asarray(flat(new)),
        ratio ** (iters - 1) * natural_step(delta),
        rtol=1e-4,
        err_msg="Niu et al.: keep the last candidate ratio^(iters−1)·x*",
    )


def test_conjugate_gradient_stops_at_the_exact_solution():
    x = optim.conjugate_gradient(lambda v: jnp.asarray(H, jnp.float32) @ v, jnp.asarray(G), 3)
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(H, G), rtol=1e-4, err_msg="H x = b")
    x1 = optim.conjugate_gradient(lambda v: jnp.asarray(H, jnp.float32) @ v, jnp.asarray(G), 1)
    alpha = (G @ G) / (G @ H @ G)  # one CG iteration from 0 is the steepest-descent step
    np.testing.assert_allclose(np.asarray(x1), alpha * G, rtol=1e-5, err_msg="x₁ = (bᵀb/bᵀHb)·b")
