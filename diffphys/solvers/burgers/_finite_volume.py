import equinox as eqx
import jax.numpy as jnp

from ..._custom_types import Array, ArrayLike, Field, FieldLike, ScalarLike
from .._base import AbstractStepper
from .._finite_volume import check_limiter, rusanov_fluxes, SSP_COURANT, ssp_rk3
from .._grid import (
    check_courant,
    check_grid,
    check_state,
    field_at,
    is_concrete,
    scalar_parameter,
    speed_promise,
)
from .._spectral import Forcing


class BurgersFV(AbstractStepper):
    """Viscous or inviscid 1D Burgers by conservative finite volumes.

    Solves `u_t + (u²/2)_x = ν u_xx` for cell averages on a periodic grid of `N` cells
    centred at `x_i = i L / N`. Fluxes: MUSCL reconstruction with a TVD slope limiter
    (`"mc"` monotonised central, `"minmod"` or `"van_leer"`), the Rusanov (local
    Lax–Friedrichs) flux of `u²/2`, and the central viscous flux `-ν (u_{i+1} - u_i)
    / dx`; time by the three-stage SSP Runge–Kutta scheme of Shu & Osher (1988). The
    update is a difference of face fluxes, so the total mass `Σ u_i dx` is conserved
    to round-off; ν = 0 (inviscid, entropy shocks) is allowed. Second order where the
    solution is smooth, first order at extrema and shocks (the limiter).

    **Arguments:**

    - `num_spatial_dims`: 1 (the only one supported).
    - `domain_extent`, `num_points`, `dt`: `L`, `N`, the step.
    - `viscosity`: `ν >= 0`, an array field (gradients flow to it).
    - `max_speed`: the bound on `|u|` the user promises; the step must satisfy
        `max_speed dt / dx + 2 ν dt / dx² <= 0.5` (checked at construction when ν is
        concrete; the error names the largest stable dt). With it the scheme keeps
        the maximum principle (no new extrema).
    - `limiter`: slope limiter name: `"mc"`, `"minmod"` or `"van_leer"`.
    - `forcing`: optional right-hand side `f`: a field `(1, N)` or `f(t) -> (1, N)`,
        evaluated at the SSP-RK3 stage times (`t`, `t + dt`, `t + dt/2`).

    Reference: LeVeque, *Finite Volume Methods for Hyperbolic Problems* (2002), ch. 6.
    """

    num_spatial_dims: int = eqx.field(static=True)
    domain_extent: float = eqx.field(static=True)
    num_points: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    limiter: str = eqx.field(static=True)
    max_speed: float = eqx.field(static=True)
    viscosity: Array
    forcing: Forcing

    def __init__(
        self,
        num_spatial_dims: int,
        domain_extent: float,
        num_points: int,
        dt: float,
        *,
        viscosity: ArrayLike = 0.0,
        max_speed: float = 1.0,
        limiter: str = "mc",
        forcing: Forcing = None,
    ):
        name = "BurgersFV"
        check_grid(
            num_spatial_dims, domain_extent, num_points, dt, name=name, dims=(1,)
        )
        check_limiter(limiter)
        self.viscosity = scalar_parameter("viscosity", viscosity, allow_zero=True)
        dx = domain_extent / num_points
        if is_concrete(self.viscosity):
            nu = float(self.viscosity)
            check_courant(
                name,
                dt,
                max_speed / dx + 2 * nu / dx**2,
                SSP_COURANT,
                what="max_speed dt/dx + 2 ν dt/dx²",
                values=f"max_speed = {max_speed}, ν = {nu}, dx = {dx:.3g}",
            )
        self.num_spatial_dims = 1
        self.domain_extent = float(domain_extent)
        self.num_points = num_points
        self.dt = float(dt)
        self.limiter = limiter
        self.max_speed = float(max_speed)
        self.forcing = forcing

    def broken_promise(self, u: Array) -> str | None:
        return speed_promise("BurgersFV", self.max_speed, u)

    def rhs(self, u: Array) -> Array:
        """`-(F_{i+1/2} - F_{i-1/2}) / dx` for one channel, shape `(N,)`."""
        dx = self.domain_extent / self.num_points
        padded = jnp.pad(u, 2, mode="wrap")
        flux = rusanov_fluxes(padded, lambda v: 0.5 * v**2, jnp.abs, self.limiter)
        flux = flux - self.viscosity.astype(u.dtype) * jnp.diff(padded[1:-1]) / dx
        return -jnp.diff(flux) / dx

    def __call__(self, u: FieldLike, t: ScalarLike = 0.0) -> Field:
        """One SSP-RK3 step from `u` at time `t` (only a time-dependent forcing reads
        `t`)."""
        u = check_state(u, (1, self.num_points))

        def rate(v, time):
            r = self.rhs(v[0])[None]
            f = field_at(self.forcing, time, u)
            return (r if f is None else r + f), None

        return ssp_rk3(rate, u, t, self.dt)[0]
