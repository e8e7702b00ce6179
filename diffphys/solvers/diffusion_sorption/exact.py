"""Manufactured solutions of diffusion–sorption, `M(u)_t = D u_xx + s`, for the
order-of-accuracy tests: a smooth `u(x, t)` that meets the boundary conditions
exactly (`u(0, t) = u_in`, `u(L, t) = −D u_x(L, t)`), and the source `s` that
makes it a solution (by automatic differentiation of the model's own `M`)."""

import jax
import jax.numpy as jnp

from ..._custom_types import Array


def cubic_profile(x: Array, t, *, diffusivity, domain_extent=1.0, inlet=1.0) -> Array:
    """`u = u_in + a(t) x + b(t) x³`, `b(t) = 0.2 + 0.1 sin t`, with `a(t)` chosen
    so that `u(L) + D u_x(L) = 0`. Positive on `[0, L]` for `L = 1`, `u_in = 1` and
    `D >= 0.1` (the tests use `D = 0.5`)."""
    L, D = domain_extent, diffusivity
    b = 0.2 + 0.1 * jnp.sin(t)
    a = -(inlet + b * (L**3 + 3 * D * L**2)) / (L + D)
    return inlet + a * x + b * x**3


def source(stepper, profile=cubic_profile):
    """`t -> s(x_i, t)` `(1, N)` at the cell centres of `stepper` (a
    `DiffusionSorption`) such that `profile(x, t, diffusivity=D, domain_extent=L,
    inlet=u_in)` solves `M(u)_t = D u_xx + s`."""
    D, L, inlet = stepper.diffusivity, stepper.domain_extent, stepper.inlet

    def u(x, t):
        return profile(x, t, diffusivity=D, domain_extent=L, inlet=inlet)

    def s(x, t):
        m_t = jax.grad(lambda tau: stepper.storage(u(x, tau)))(t)
        u_xx = jax.grad(jax.grad(u, argnums=0), argnums=0)(x, t)
        return m_t - D * u_xx

    x = stepper.coordinates

    def at(t):
        return jax.vmap(s, in_axes=(0, None))(x, jnp.asarray(t, x.dtype))[None]

    return at
