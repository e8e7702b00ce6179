"""Exact solutions of Burgers' equation `u_t + u u_x = ν u_xx` (1D, periodic unless
stated), for tests, benchmarks and notebooks.

Cole–Hopf: `u = -2ν φ_x / φ` with `φ_t = ν φ_xx` (Hopf 1950, Cole 1951).
"""

import jax.numpy as jnp

from ..._custom_types import Array, ArrayLike

# The inviscid Riemann problem is a solution of the scalar conservation law: it lives
# beside `ConservationLaw` and serves `BurgersFV`'s tests from there.
from ..conservation_law.exact import riemann as riemann


def cole_hopf_single_mode(
    x: ArrayLike, t: ArrayLike, *, viscosity, a: float, b: float, domain_extent: float
) -> Array:
    """`φ = a + b e^{-νk²t} cos(kx)`, `k = 2π/L`, `a > b > 0`:

    `u = 2νk b e^{-νk²t} sin(kx) / (a + b e^{-νk²t} cos(kx))`.

    `max|u_0| = 2νkb / sqrt(a² - b²)`; the front at `x = L/2` steepens as `b -> a`.
    """
    return cole_hopf_modes(
        x, t, viscosity=viscosity, a=a, b=[b], phases=[0.0], domain_extent=domain_extent
    )


def cole_hopf_modes(
    x: ArrayLike,
    t: ArrayLike,
    *,
    viscosity,
    a: float,
    b,
    phases,
    domain_extent: float,
) -> Array:
    """`φ = a + Σ_m b_m e^{-νk_m²t} cos(k_m x + θ_m)`, `k_m = 2πm/L`, `a > Σ|b_m|`:

    `u = 2ν Σ_m k_m b_m e^{-νk_m²t} sin(k_m x + θ_m) / φ`.
    """
    b, phases = jnp.asarray(b), jnp.asarray(phases)
    if float(jnp.sum(jnp.abs(b))) >= a:
        raise ValueError("Need a > sum(|b_m|) so that φ stays positive.")
    x = jnp.asarray(x)[..., None]
    lead = (1,) * (x.ndim - 1)  # modes along the last axis, broadcast over x
    b, phases = b.reshape(lead + (-1,)), phases.reshape(lead + (-1,))
    k = 2 * jnp.pi * jnp.arange(1, b.shape[-1] + 1, dtype=b.dtype) / domain_extent
    k = k.reshape(lead + (-1,))
    decay = b * jnp.exp(-viscosity * k**2 * t)
    phi = a + jnp.sum(decay * jnp.cos(k * x + phases), axis=-1)
    num = jnp.sum(k * decay * jnp.sin(k * x + phases), axis=-1)
    return 2 * viscosity * num / phi


def cole_hopf(u0: ArrayLike, t: ArrayLike, *, viscosity, domain_extent: float) -> Array:
    """Exact solution at time `t` for general periodic initial data.

    `u0` holds point values on the grid `x_i = i L / N`. Its mean `c` is removed and
    restored by the Galilean shift `u(x, t) = c + w(x - ct, t)`; for the zero-mean
    part, `φ_0 = exp(-(1/2ν) ∫_0^x w_0)` is evolved exactly by the heat kernel in
    Fourier space and `u = -2ν φ_x / φ` is differentiated spectrally. Exact for the
    trigonometric interpolant of `u0` up to the resolution of `φ` on the same grid:
    refine the grid (spectral interpolation of `u0`) when `ν` is small, since `φ_0`
    then varies over `exp(max|∫w_0| / 2ν)`.
    """
    u0 = jnp.asarray(u0)
    n = u0.shape[-1]
    k = 2 * jnp.pi * jnp.fft.rfftfreq(n, domain_extent / n)
    mean = jnp.mean(u0)
    w_hat = jnp.fft.rfft(u0 - mean)
    # Antiderivative of the zero-mean part (periodic), spectrally.
    ik = 1j * k.astype(w_hat.dtype)
    integral_hat = jnp.where(k == 0, 0.0, w_hat / jnp.where(k == 0, 1.0, ik))
    exponent = -jnp.fft.irfft(integral_hat, n) / (2 * viscosity)
    phi0 = jnp.exp(exponent - jnp.max(exponent))  # u is invariant to φ's scale
    heat = jnp.exp(-viscosity * k**2 * t).astype(w_hat.dtype)
    phi_hat = jnp.fft.rfft(phi0) * heat
    phi = jnp.fft.irfft(phi_hat, n)
    phi_x = jnp.fft.irfft(ik * phi_hat, n)
    w = -2 * viscosity * phi_x / phi
    # Galilean shift by c t: evaluate w at x - c t by a Fourier phase shift.
    shifted = jnp.fft.irfft(
        jnp.fft.rfft(w) * jnp.exp(-ik * jnp.asarray(mean * t, ik.dtype)), n
    )
    return mean + shifted
