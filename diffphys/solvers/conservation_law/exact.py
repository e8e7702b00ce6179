"""Exact solutions of the 1D scalar conservation laws `ConservationLaw` solves:
the hyperbolic ProbConserv instances (Hansen et al., ICML 2023, appendix; parameters
of its data generator) with their total-mass curves `b(t) = ∫ u dx`, and the
entropy solution of the inviscid Burgers Riemann problem.

- `advection`: `u_t + a u_x = 0` on `[0, 1]`, inflow 1; a step at `½ + at`;
    mass `½ + min(at, ½)`.
- `burgers_ramp`: `u_t + (u²/2)_x = 0` on `[-1, 1]`, inflow `a`; a compression
    ramp, then a shock; mass `min(a(1 + at)/2, 2a)`. The mass is capped at `2a`,
    reached when the shock leaves the domain at `t = 3/a` (ProbConserv's formula
    omits the cap; it matters for `a > 3`).
- `riemann`: inviscid Burgers from a jump `u_left | u_right` on the real line.

JAX functions of arrays `x`, `t` (broadcast together) and scalar parameters.
"""

import jax.numpy as jnp

from ..._custom_types import Array, ArrayLike


def advection(x: ArrayLike, t: ArrayLike, *, a) -> Array:
    """`u = 1` where `x - at <= ½`, else 0."""
    x, t = jnp.asarray(x), jnp.asarray(t)
    return jnp.where(x - a * t <= 0.5, 1.0, 0.0).astype(jnp.result_type(x, t))


def advection_mass(t: ArrayLike, *, a) -> Array:
    return 0.5 + jnp.minimum(a * jnp.asarray(t), 0.5)


def burgers_ramp(x: ArrayLike, t: ArrayLike, *, a) -> Array:
    """Inviscid Burgers from the ramp `u_0 = a` (`x <= -1`), `-ax` (`-1 < x <= 0`),
    0 (`x > 0`), with inflow `a`: a compression ramp until `t_b = 1/a`, then a shock
    at `(at - 1)/2` (Rankine–Hugoniot speed `a/2`)."""
    x, t = jnp.asarray(x), jnp.asarray(t)
    tail = a * t - 1
    before = tail < 0
    ramp = jnp.where(
        x <= tail, a, jnp.where(x <= 0, a * x / jnp.where(before, tail, -1.0), 0.0)
    )
    shock = jnp.where(x < tail / 2, a, 0.0)
    return jnp.where(before, ramp, shock)


def burgers_ramp_shock(t: ArrayLike, *, a) -> Array:
    """Where `u` drops to 0: `x = 0` before `t_b = 1/a`, then `(at - 1)/2`."""
    return jnp.maximum(a * jnp.asarray(t) - 1, 0.0) / 2


def burgers_ramp_mass(t: ArrayLike, *, a) -> Array:
    return jnp.minimum(0.5 * a * (1 + a * jnp.asarray(t)), 2 * a)


def riemann(
    x: ArrayLike, t: ArrayLike, *, u_left: float, u_right: float, x0: float = 0.0
) -> Array:
    """Entropy solution of the inviscid Riemann problem (on the real line).

    A shock moving at the Rankine–Hugoniot speed `s = (u_left + u_right) / 2` when
    `u_left > u_right`, a rarefaction fan `u = (x - x0) / t` otherwise.
    """
    xi = (jnp.asarray(x) - x0) / jnp.maximum(t, 1e-300)
    if u_left > u_right:
        speed = 0.5 * (u_left + u_right)
        return jnp.where(xi < speed, u_left, u_right)
    return jnp.clip(xi, u_left, u_right)
