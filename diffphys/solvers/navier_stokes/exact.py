"""Closed-form solutions of 2D incompressible Navier–Stokes in vorticity form,
`ω_t + u·∇ω = ν Δω − α ω + f` on `[0, L)²`, used by the tests, the benchmark and
the notebook. Fields are `(1, N, N)`, axis 0 is `x`, axis 1 is `y`.

Both are flows whose nonlinear term vanishes identically (`ω` a function of the
stream function), so they decay or grow as the linear part says, exactly.
"""

import jax.numpy as jnp

from ..._custom_types import Array


def _grid(num_points: int, domain_extent: float):
    x = jnp.arange(num_points, dtype=float) * domain_extent / num_points
    return jnp.meshgrid(x, x, indexing="ij")


def taylor_green(
    num_points: int,
    domain_extent: float,
    t,
    *,
    viscosity,
    drag=0.0,
    wavenumber: int = 1,
    amplitude=1.0,
) -> Array:
    """The Taylor–Green vortex: `u = U (sin kx cos ky, −cos kx sin ky) e^{−r t}`,
    `ω = 2 k U sin kx sin ky e^{−r t}` with `k = 2π n / L`, decaying at
    `r = 2 ν k² + α` (Taylor & Green 1937)."""
    x, y = _grid(num_points, domain_extent)
    k = 2 * jnp.pi * wavenumber / domain_extent
    decay = jnp.exp(-(2 * viscosity * k**2 + drag) * t)
    return (2 * k * amplitude * jnp.sin(k * x) * jnp.sin(k * y) * decay)[None]


def kolmogorov_laminar(
    num_points: int,
    domain_extent: float,
    t,
    *,
    viscosity,
    drag=0.0,
    wavenumber: int = 4,
    amplitude=1.0,
) -> Array:
    """Laminar Kolmogorov flow from rest under the forcing of `kolmogorov_forcing`:
    the shear `u = (u(y, t), 0)` with `ω(t) = ω_s (1 − e^{−r t})`, `ω_s = f / r`,
    `f = −A k cos ky`, `r = ν k² + α`."""
    _, y = _grid(num_points, domain_extent)
    k = 2 * jnp.pi * wavenumber / domain_extent
    rate = viscosity * k**2 + drag
    steady = -amplitude * k * jnp.cos(k * y) / rate
    return (steady * (1 - jnp.exp(-rate * t)))[None]
