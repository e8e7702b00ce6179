"""ProbConserv, the hard projection and the mass-conserving wrapper."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import central_difference

import diffphys as dp
from diffphys.solvers.conservation_law import exact as hyperbolic
from diffphys.solvers.porous_medium import exact


C = dp.constraints


@eqx.filter_jit
def _problem(key, n=7, slices=3, m=1, dtype=jnp.float64):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    mean = jax.random.normal(k1, (slices, n), dtype)
    variance = jnp.exp(jax.random.normal(k2, (slices, n), dtype))
    G = jnp.abs(jax.random.normal(k3, (m, n), dtype)) + 0.1
    b = jax.random.normal(k4, (slices, m), dtype)
    return mean, variance, G, b


def _closed_form(mu, cov, G, b, noise):
    # The textbook formulas with an explicit inverse, in float64 NumPy.
    mu, cov, G, b = (np.asarray(a, np.float64) for a in (mu, cov, G, b))
    S = noise**2 * np.eye(G.shape[0]) + G @ cov @ G.T
    K = cov @ G.T @ np.linalg.inv(S)
    return mu - K @ (G @ mu - b), cov - K @ G @ cov


@pytest.mark.parametrize("noise", [0.0, 0.3])
@pytest.mark.parametrize("m", [1, 2])
def test_probconserv_closed_form(getkey, noise, m):
    mean, variance, G, b = _problem(getkey(), m=m)
    full = C.ProbConserv(G, noise=noise, full_covariance=True)
    mu, cov = full(mean, C.Diagonal(variance), b)
    mu_full, cov_full = C.ProbConserv(G, noise=noise)(
        mean, C.Full(jax.vmap(jnp.diag)(variance)), b
    )
    mu_diag, var_diag = C.ProbConserv(G, noise=noise)(mean, C.Diagonal(variance), b)
    for j in range(mean.shape[0]):
        ref_mu, ref_cov = _closed_form(mean[j], np.diag(variance[j]), G, b[j], noise)
        np.testing.assert_allclose(mu[j], ref_mu, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(cov.matrix[j], ref_cov, rtol=1e-11, atol=1e-12)
        # Diagonal and full covariance inputs agree on a diagonal input.
        np.testing.assert_allclose(mu_full[j], ref_mu, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(cov_full.matrix[j], ref_cov, atol=1e-12)
        np.testing.assert_allclose(mu_diag[j], ref_mu, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(var_diag.variance[j], np.diag(ref_cov), atol=1e-12)
    error = C.conservation_error(mu, G, b)
    if noise == 0:
        assert float(jnp.max(jnp.abs(error))) < 1e-13
    else:  # a soft constraint: closer than the prior, not exact
        prior = C.conservation_error(mean, G, b)
        assert float(jnp.max(jnp.abs(error))) > 1e-6
        assert bool(jnp.all(jnp.abs(error) <= jnp.abs(prior)))


def test_float32_exact_conservation(getkey):
    # Realistic scale: 201 points, trapezoid weights, a sharp variance bump.
    x = jnp.linspace(0.0, 1.0, 201, dtype=jnp.float32)
    g = C.mass_weights(x)
    mean = jnp.tanh(20 * (0.3 - x))[None] + 0.01 * jax.random.normal(
        getkey(), (4, 201), jnp.float32
    )
    variance = (1e-4 + jnp.exp(-(((x - 0.3) / 0.02) ** 2)))[None].repeat(4, 0)
    b = jnp.full((4,), 0.25, jnp.float32)
    for cov in (C.Diagonal(variance), C.Full(jax.vmap(jnp.diag)(variance))):
        mu, post = C.ProbConserv(g)(mean, cov, b)
        assert mu.dtype == jnp.float32
        # Round-off of the sum G μ itself: a few eps of Σ|g_i μ_i|.
        floor = 50 * jnp.finfo(jnp.float32).eps * jnp.abs(mu) @ g
        assert bool(jnp.all(jnp.abs(C.conservation_error(mu, g, b)) < floor))
        assert float(jnp.min(post.variance)) >= 0.0


def test_ensemble_matches_gaussian(getkey):
    # The members' empirical moments after the update equal the Gaussian update of
    # their empirical moments; each member satisfies the constraint at σ_G = 0.
    samples = (
        jax.random.normal(getkey(), (12, 2, 9)) * jnp.linspace(0.5, 2.0, 9)[None, None]
    )
    G = jnp.ones(9) / 9
    b = jnp.array([0.3, -0.2])
    for noise in (0.0, 0.2):
        pc = C.ProbConserv(G, noise=noise)
        ens = C.Ensemble(samples)
        mu, post = pc(ens.mean, ens, b)
        for j in range(2):
            emp = np.cov(np.asarray(samples[:, j]), rowvar=False)
            ref_mu, ref_cov = _closed_form(
                samples[:, j].mean(0), emp, G[None], b[j : j + 1], noise
            )
            np.testing.assert_allclose(mu[j], ref_mu, atol=1e-12)
            new = np.cov(np.asarray(post.samples[:, j]), rowvar=False)
            np.testing.assert_allclose(new, ref_cov, atol=1e-12)
        if noise == 0:
            assert float(jnp.max(jnp.abs(post.samples @ G - b[None]))) < 1e-13


def test_hard_projection(getkey):
    mean, variance, G, b = _problem(getkey(), m=2)
    mu, cov = C.HardProjection(G)(mean, C.Diagonal(variance), b)
    ref, _ = C.ProbConserv(G)(mean, C.Diagonal(jnp.ones_like(variance)), b)
    np.testing.assert_allclose(mu, ref, atol=1e-12)
    assert cov.variance is variance  # variances untouched
    assert float(jnp.max(jnp.abs(C.conservation_error(mu, G, b)))) < 1e-13


def test_gradients_finite_differences(getkey):
    mean, variance, G, b = _problem(getkey(), m=1)

    def loss(theta):
        mu, var, sigma = theta
        out, cov = C.ProbConserv(G, noise=sigma, full_covariance=True)(
            mu, C.Diagonal(var), b
        )
        return jnp.sum(jnp.sin(out)) + jnp.sum(cov.matrix**2)

    theta = (mean, variance, jnp.array(0.4))
    grad = jax.grad(loss)(theta)
    v = (
        jax.random.normal(getkey(), mean.shape),
        jax.random.normal(getkey(), variance.shape),
        jnp.array(1.0),
    )
    fd = central_difference(loss, theta, v)
    ad = sum(jnp.vdot(a, c) for a, c in zip(grad, v, strict=True))
    assert abs(float(ad - fd)) < 1e-7 * max(1.0, abs(float(fd)))


def test_bad_input(getkey):
    mean, variance, G, b = _problem(getkey(), m=1)
    with pytest.raises(ValueError, match="linearly dependent"):
        C.ProbConserv(jnp.stack([G[0], 2 * G[0]]))
    with pytest.raises(ValueError, match="b must have shape"):
        C.ProbConserv(G)(mean, C.Diagonal(variance), b[:2])
    with pytest.raises(ValueError, match="columns"):
        C.ProbConserv(G)(mean[:, :5], C.Diagonal(variance[:, :5]), b)
    with pytest.raises(ValueError, match="Diagonal variance must have shape"):
        C.ProbConserv(G)(mean, C.Diagonal(variance[0]), b)
    with pytest.raises(ValueError, match="noise"):
        C.ProbConserv(G, noise=-1.0)
    with pytest.raises(Exception, match="singular"):
        C.ProbConserv(G)(mean, C.Diagonal(jnp.zeros_like(variance)), b)


def test_mass_weights_converge_to_mass_curves():
    # Trapezoid quadrature of the analytic solutions tends to the closed-form mass:
    # faster than first order for the PME front; across a jump of height J the
    # error is at most J h / 2 (plus the O(h²) of the smooth part).
    sizes, errors = [100, 200, 400, 800], []

    @eqx.filter_jit
    def mass_errors(n):
        x = jnp.linspace(0.0, 1.0, n)
        pme = C.mass_weights(x) @ exact.pme(x, 0.5, m=3.0) - exact.pme_mass(0.5, m=3.0)
        stefan = C.mass_weights(x) @ exact.stefan(x, 0.05, u_star=0.6)
        xb = jnp.linspace(-1.0, 1.0, n)
        burgers = C.mass_weights(xb) @ hyperbolic.burgers_ramp(xb, 0.4, a=3.0)
        return (
            pme,
            stefan - exact.stefan_mass(0.05, u_star=0.6),
            burgers - hyperbolic.burgers_ramp_mass(0.4, a=3.0),
        )

    for n in sizes:
        pme, stefan, burgers = mass_errors(n)
        errors.append(abs(float(pme)))
        h = 1 / (n - 1)
        assert abs(float(stefan)) < 0.3 * h + h**2
        assert abs(float(burgers)) < 3.0 * 2 * h / 2 + h**2
    order = -np.polyfit(np.log(sizes), np.log(errors), 1)[0]
    print(f"PME trapezoid mass errors {errors}, order {order:.2f}")
    assert order > 1.2


def test_mass_conserving_model(getkey):
    fno = dp.operators.FNO(1, 1, 1, modes=4, width=8, num_layers=2, key=getkey())
    u = jnp.sin(jnp.linspace(0, 2 * jnp.pi, 32, endpoint=False))[None] + 0.5
    apply = eqx.filter_jit(lambda m, v: m(v))  # one compilation, not one per op
    hard = C.MassConserving(fno, "hard")
    assert abs(float(jnp.sum(apply(hard, u)) - jnp.sum(u))) < 1e-12
    model = C.MassConserving(dp.operators.JAWS(fno, 1, 1, key=getkey()), "probconserv")
    assert abs(float(jnp.sum(apply(model, u)) - jnp.sum(u))) < 1e-12
    # The gradient reaches the network and the variance head.
    grads = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.sum(m(u) ** 2)))(model)
    leaves = jax.tree.leaves(eqx.filter(grads, eqx.is_inexact_array))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    head = jax.tree.leaves(eqx.filter(grads.model.head, eqx.is_inexact_array))
    assert any(float(jnp.max(jnp.abs(g))) > 0 for g in head)
    with pytest.raises(ValueError, match="variance"):
        C.MassConserving(fno, "probconserv")
