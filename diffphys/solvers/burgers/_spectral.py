from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp

from ..._custom_types import Array, ArrayLike, Field, Scalar, ScalarLike
from .._spectral import phi_functions
from ._common import (
    check_grid,
    check_state,
    check_viscosity,
    forcing_at,
    SpectralBurgersTerms,
)


_MAX_COURANT = 2.0


class BurgersSpectral(eqx.Module):
    """Viscous Burgers on a periodic domain by the pseudo-spectral ETDRK method.

    Solves `u_t + (u²/2)_x = ν u_xx` in 1D (one channel) and the vector Burgers
    equation `u_t + (u·∇)u = ν Δu` in 2D/3D (`d` channels), optionally with a
    forcing `f(x, t)`, on `[0, L)^d` with `N` points per axis (left end
    included). In Fourier space `v_t = L v + N(v)` with `L = -ν|k|²` integrated exactly
    and the nonlinear term by exponential time differencing Runge–Kutta of order
    1–4 (Cox & Matthews 2002). The φ-function coefficients are computed once at
    construction by the contour-integral mean of Kassam & Trefethen (2005)
    (`num_circle_points` points, radius `circle_radius`); products are dealiased by
    truncating modes above `dealiasing_fraction` of the highest one, before the
    inverse transform and after the forward one (as exponax).

    **Arguments:**

    - `num_spatial_dims`, `domain_extent`, `num_points`, `dt`: the grid `(d, L, N)`
        and the step.
    - `viscosity`: `ν > 0`; an array field, so gradients flow to it.
    - `order`: ETDRK order 1–4 (2 is the float32 default; use 4 with float64).
    - `forcing`: optional right-hand side: a field `(C, *N)`, or a callable
        `f(t) -> (C, *N)` on the grid, evaluated at each stage's time (pass the time
        with `stepper(u, t)`, or `rollout(..., t0=...)`).
    - `max_speed`: a bound on `|u|` the user promises; with it the Courant number
        `max_speed · dt / dx` is checked to be <= 2 at construction, and the error
        names the largest admissible dt. The bound is a guard against gross mistakes,
        not a guarantee: ETDRK integrates diffusion exactly, so no diffusive limit
        applies, and the smooth Cole–Hopf tests run stably at Courant numbers up to
        about 1.4 (dt = 0.05, N = 256, |u| <= 0.7).

    **Call:** `stepper(u, t=0.0) -> u_next`, `u` of shape `(C, *N)` at time `t` (only a
    time-dependent forcing reads `t`); the output has `u`'s dtype.
    """

    num_spatial_dims: int = eqx.field(static=True)
    domain_extent: float = eqx.field(static=True)
    num_points: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    order: int = eqx.field(static=True)
    viscosity: Array
    forcing: Field | Callable[[Scalar], Field] | None
    terms: SpectralBurgersTerms
    coefficients: dict[str, Array]

    def __init__(
        self,
        num_spatial_dims: int,
        domain_extent: float,
        num_points: int,
        dt: float,
        *,
        viscosity: ArrayLike = 0.1,
        order: int = 2,
        forcing: Field | Callable[[Scalar], Field] | None = None,
        max_speed: float = 1.0,
        dealiasing_fraction: float = 2 / 3,
        num_circle_points: int = 16,
        circle_radius: float = 1.0,
    ):
        check_grid(num_spatial_dims, domain_extent, num_points, dt)
        if order not in (1, 2, 3, 4):
            raise ValueError(f"`order` must be 1, 2, 3 or 4, got {order}.")
        dx = domain_extent / num_points
        if max_speed * dt / dx > _MAX_COURANT:
            raise ValueError(
                f"dt = {dt} breaks the advective limit max_speed * dt / dx <= "
                f"{_MAX_COURANT} (max_speed = {max_speed}, dx = {dx:.3g}); the largest "
                f"admissible dt is {_MAX_COURANT * dx / max_speed:.4g}."
            )
        self.num_spatial_dims = num_spatial_dims
        self.domain_extent = float(domain_extent)
        self.num_points = num_points
        self.dt = float(dt)
        self.order = order
        self.viscosity = check_viscosity(viscosity, allow_zero=False)
        self.terms = SpectralBurgersTerms(
            num_spatial_dims, domain_extent, num_points, dealiasing_fraction
        )
        if forcing is not None and not callable(forcing):
            check_state(forcing, num_spatial_dims, num_points)
        self.forcing = forcing
        z = dt * self.viscosity * self.terms.laplacian_symbol()
        z = jnp.broadcast_to(z, self.terms.mask.shape)
        full = phi_functions(z, num_circle_points, circle_radius, 3)
        half = phi_functions(z / 2, num_circle_points, circle_radius, 1)
        phi1, phi2, phi3 = full
        self.coefficients = {
            "exp": jnp.exp(z),
            "exp_half": jnp.exp(z / 2),
            "phi1": dt * phi1,
            "phi2": dt * phi2,
            "half_phi1": dt / 2 * half[0],
            "f1": dt * (phi1 - 3 * phi2 + 4 * phi3),
            "f2": dt * (phi2 - 2 * phi3),
            "f3": dt * (4 * phi3 - phi2),
        }

    def __call__(self, u: Field, t: ScalarLike = 0.0) -> Field:
        check_state(u, self.num_spatial_dims, self.num_points)
        h = self.dt
        v = self.terms.forward(u)
        c = {k: c.astype(v.dtype) for k, c in self.coefficients.items()}

        def n(w, time):
            out = self.terms.nonlinear(w)
            f = forcing_at(self.forcing, time, u)
            return out if f is None else out + self.terms.forward(f)

        nv = n(v, t)
        if self.order == 1:
            v = c["exp"] * v + c["phi1"] * nv
        elif self.order == 2:
            a = c["exp"] * v + c["phi1"] * nv
            v = a + c["phi2"] * (n(a, t + h) - nv)
        elif self.order == 3:
            a = c["exp_half"] * v + c["half_phi1"] * nv
            na = n(a, t + h / 2)
            b = c["exp"] * v + c["phi1"] * (2 * na - nv)
            v = c["exp"] * v + c["f1"] * nv + 4 * c["f2"] * na + c["f3"] * n(b, t + h)
        else:
            a = c["exp_half"] * v + c["half_phi1"] * nv
            na = n(a, t + h / 2)
            b = c["exp_half"] * v + c["half_phi1"] * na
            nb = n(b, t + h / 2)
            cc = c["exp_half"] * a + c["half_phi1"] * (2 * nb - nv)
            v = (
                c["exp"] * v
                + c["f1"] * nv
                + 2 * c["f2"] * (na + nb)
                + c["f3"] * n(cc, t + h)
            )
        return self.terms.inverse(v).astype(u.dtype)
