"""Linear theory of the Kuramoto–Sivashinsky equation (Kuramoto & Tsuzuki 1976;
Sivashinsky 1977), used by the tests and the notebook.

Linearised about `u = 0`, `u_t + a Δu + b Δ²u = 0` (the nonlinear term is quadratic):
a Fourier mode `exp(i k·x)` grows at `λ(k) = a |k|² − b |k|⁴`. Modes with `0 < |k| <
√(a/b)` grow; the fastest, `|k| = √(a / 2b)`, at `a² / 4b`. On `[0, L)` the mode `m`
has `|k| = 2π m / L`, so the domain length sets how many modes are unstable: it is the
bifurcation parameter (with `a = b = 1`, chaos from about `L = 60` in 1D).
"""

import jax.numpy as jnp

from ..._custom_types import Array, ArrayLike


def growth_rate(wavenumber: ArrayLike, *, anti_diffusion=1.0, hyper_diffusion=1.0):
    """`λ(k) = a |k|² − b |k|⁴` of a mode of angular wavenumber `|k|`."""
    k2 = jnp.asarray(wavenumber) ** 2
    return anti_diffusion * k2 - hyper_diffusion * k2**2


def unstable_modes(
    domain_extent: float, *, anti_diffusion=1.0, hyper_diffusion=1.0
) -> int:
    """How many integer modes `m >= 1` of `[0, L)` grow (`2π m / L < √(a/b)`)."""
    cutoff = (anti_diffusion / hyper_diffusion) ** 0.5
    m = 1
    while 2 * jnp.pi * m / domain_extent < cutoff:
        m += 1
    return m - 1


def linear_mode(
    x: Array,
    t,
    *,
    mode: int,
    amplitude: float,
    domain_extent: float,
    anti_diffusion=1.0,
    hyper_diffusion=1.0,
) -> Array:
    """`A e^{λ t} cos(2π m x / L)`: the solution of the linearised equation from one
    cosine mode (the nonlinear equation's solution to `O(A²)`)."""
    k = 2 * jnp.pi * mode / domain_extent
    rate = growth_rate(
        k, anti_diffusion=anti_diffusion, hyper_diffusion=hyper_diffusion
    )
    return amplitude * jnp.exp(rate * t) * jnp.cos(k * x)
