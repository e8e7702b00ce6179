"""Analytic solutions and total-mass curves `b(t) = ∫ u dx` of the parabolic
ProbConserv instances (Hansen et al., ICML 2023, appendix; parameters of its data
generator), and the Barenblatt solution of the porous medium equation. The
hyperbolic instances' solutions live beside their solver, in
`diffphys.solvers.conservation_law.exact`.

- `heat`: `u_t = k u_xx` on the periodic `[0, 2π)`, `u_0 = sin x`;
    `u = e^{-kt} sin x`, mass 0.
- `pme`: `u_t = (u^m u_x)_x` on `[0, 1]`, `u(0, t) = (mt)^{1/m}`;
    `u = (m (t - x)₊)^{1/m}`, mass `m^{1+1/m} t^{1+1/m} / (m+1)`.
- `stefan`: `k = 1[u >= u*]` on `[0, 1]`, `u(0, t) = 1`;
    `u = 1 - c₁ erf(x / 2√t)` up to the front `α√t`, 0 beyond; mass `2 c₁ √(t/π)`.

All functions are JAX functions of arrays `x`, `t` (broadcast together) and a scalar
parameter, differentiable in all three (away from fronts).
"""

import jax
import jax.lax as lax
import jax.numpy as jnp
from jax.scipy.special import erf, gammaln

from ..._custom_types import Array, ArrayLike


def _positive_power(v: Array, p) -> Array:
    """`(v₊)^p`, with a finite gradient where `v <= 0` (the support's edge)."""
    positive = v > 0
    return jnp.where(positive, jnp.where(positive, v, 1.0) ** p, 0.0)


def heat(x: ArrayLike, t: ArrayLike, *, k) -> Array:
    """`u = e^{-kt} sin x` on the periodic `[0, 2π)`."""
    return jnp.exp(-k * jnp.asarray(t)) * jnp.sin(x)


def heat_mass(t: ArrayLike, *, k) -> Array:
    del k
    return jnp.zeros_like(jnp.asarray(t))


def pme(x: ArrayLike, t: ArrayLike, *, m) -> Array:
    """`u = (m (t - x)₊)^{1/m}`: a front at `x = t` moving at unit speed."""
    return _positive_power(m * (jnp.asarray(t) - jnp.asarray(x)), 1 / m)


def pme_inflow(t: ArrayLike, *, m) -> Array:
    """The boundary value `u(0, t) = (m t)^{1/m}`."""
    return pme(0.0, t, m=m)


def pme_mass(t: ArrayLike, *, m) -> Array:
    t = jnp.maximum(jnp.asarray(t), 0.0)
    return m ** (1 + 1 / m) * t ** (1 + 1 / m) / (m + 1)


def stefan_constants(u_star) -> tuple[Array, Array, Array]:
    """`(z₁, α, c₁)` of the one-phase Stefan solution with threshold `u*`.

    `z₁` solves `u* erf(z) z e^{z²} = (1 - u*)/√π` (the Stefan condition
    `u* dx*/dt = -u_x` at the front), taken in log form by bisection on
    `(1e-8, 6)` and polished by two Newton steps (which carry the derivative in
    `u*`); `α = 2 z₁`, `c₁ = (1 - u*)/erf(z₁)`. Needs `0 < u* < 1`.
    """
    u_star = jnp.asarray(u_star)

    def g(z):
        return (
            jnp.log(erf(z))
            + jnp.log(z)
            + z**2
            - jnp.log((1 - u_star) / (u_star * jnp.sqrt(jnp.pi)))
        )

    def bisect(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        up = g(mid) > 0
        return jnp.where(up, lo, mid), jnp.where(up, mid, hi)

    bracket = (jnp.full_like(u_star, 1e-8), jnp.full_like(u_star, 6.0))
    lo, hi = lax.fori_loop(0, 60, bisect, jax.lax.stop_gradient(bracket))
    z = lax.stop_gradient(0.5 * (lo + hi))
    for _ in range(2):
        dg = 2 / jnp.sqrt(jnp.pi) * jnp.exp(-(z**2)) / erf(z) + 1 / z + 2 * z
        z = z - g(z) / dg
    return z, 2 * z, (1 - u_star) / erf(z)


def stefan_front(t: ArrayLike, *, u_star) -> Array:
    """The front position `x*(t) = α √t`."""
    return stefan_constants(u_star)[1] * jnp.sqrt(jnp.asarray(t))


def stefan(x: ArrayLike, t: ArrayLike, *, u_star) -> Array:
    """`u = 1 - c₁ erf(x / 2√t)` for `x <= α√t`, 0 beyond (a jump from `u*`)."""
    _, alpha, c1 = stefan_constants(u_star)
    x, t = jnp.asarray(x), jnp.asarray(t)
    safe_t = jnp.where(t > 0, t, 1.0)
    inside = (x <= alpha * jnp.sqrt(safe_t)) & (t > 0)
    return jnp.where(inside, 1 - c1 * erf(x / (2 * jnp.sqrt(safe_t))), 0.0)


def stefan_mass(t: ArrayLike, *, u_star) -> Array:
    c1 = stefan_constants(u_star)[2]
    return 2 * c1 * jnp.sqrt(jnp.maximum(jnp.asarray(t), 0.0) / jnp.pi)


def _barenblatt_constants(m):
    return 1 / (m + 2), m / (2 * (m + 1) * (m + 2))


def barenblatt(x: ArrayLike, t: ArrayLike, *, m, C) -> Array:
    """The source-type (Barenblatt) solution of `u_t = (u^m u_x)_x` on the line:

    `u = s^{-β} (C - κ x² s^{-2β})₊^{1/m}`, `s = t/(m+1)`, `β = 1/(m+2)`,
    `κ = m / (2(m+1)(m+2))`, a compactly supported pulse of constant mass whose
    front `x_f = √(C/κ) s^β` spreads like `t^{1/(m+2)}`.
    """
    beta, kappa = _barenblatt_constants(m)
    s = jnp.asarray(t) / (m + 1)
    core = C - kappa * jnp.asarray(x) ** 2 * s ** (-2 * beta)
    return _positive_power(core, 1 / m) * s ** (-beta)


def barenblatt_front(t: ArrayLike, *, m, C) -> Array:
    beta, kappa = _barenblatt_constants(m)
    return jnp.sqrt(C / kappa) * (jnp.asarray(t) / (m + 1)) ** beta


def barenblatt_mass(*, m, C) -> Array:
    """`∫ u dx = C^{1/m + 1/2} κ^{-1/2} B(½, 1/m + 1)`, constant in time."""
    _, kappa = _barenblatt_constants(m)
    p = 1 / m
    log_beta = gammaln(0.5) + gammaln(p + 1) - gammaln(p + 1.5)
    return C ** (p + 0.5) / jnp.sqrt(kappa) * jnp.exp(log_beta)
