from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp

from ..._custom_types import Array, ArrayLike, Field, FieldLike, Float, ScalarLike
from .._boundary import (
    BoundaryCondition,
    check_boundaries,
    Dirichlet,
    Outflow,
    Periodic,
)
from .._finite_volume import (
    AbstractFiniteVolume1D,
    check_limiter,
    rusanov_fluxes,
    SSP_COURANT,
    ssp_rk3,
)
from .._grid import (
    check_courant,
    check_grid,
    check_state,
    is_concrete,
    speed_promise,
)


_FLUXES = ("advection", "burgers")


class ConservationLaw(AbstractFiniteVolume1D):
    """A 1D scalar conservation law `u_t + f(u)_x = 0` by MUSCL finite volumes and
    SSP-RK3, with inflow/outflow or periodic ends: linear advection `f = a u` and
    inviscid Burgers `f = u²/2` (the hyperbolic ProbConserv instances).

    The same face fluxes as `BurgersFV` (limited MUSCL states, Rusanov flux), on `N`
    cells of `[0, L]` (centres `(i + ½) h`; `i h` when periodic). Ghost cells hold
    the inflow value `g` at a `Dirichlet` end and copy the last cell at an `Outflow`
    end. The update is a difference of face fluxes, so `step` reports the boundary
    inflow over the step and `mass(u⁺) - mass(u)` equals it to round-off. Second
    order where smooth, first order at shocks and contact discontinuities.

    **Arguments:**

    - `num_spatial_dims`: 1.
    - `domain_extent`, `num_points`, `dt`: `L`, `N`, the step (shift the
        coordinates yourself for domains not starting at 0).
    - `flux`: `"advection"` or `"burgers"`.
    - `velocity`: `a` of the advection flux (an array field; ignored by Burgers).
    - `left`, `right`: `Dirichlet(g)` (inflow state), `Outflow()` or `Periodic()`.
    - `max_speed`: the bound on `|f'(u)|` the user promises (advection: `|a|` is
        used); `max_speed dt / h <= 0.5` is checked at construction, the error names
        the largest stable dt. `None`: no check (the caller guarantees the bound,
        e.g. a scenario whose dt comes from the largest parameter drawn).
    - `limiter`: `"mc"`, `"minmod"` or `"van_leer"`.

    Reference: LeVeque, *Finite Volume Methods for Hyperbolic Problems* (2002),
    ch. 6–7 (ghost cells ch. 7).
    """

    num_spatial_dims: int = eqx.field(static=True)
    domain_extent: float = eqx.field(static=True)
    num_points: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    flux_name: str = eqx.field(static=True)
    limiter: str = eqx.field(static=True)
    periodic: bool = eqx.field(static=True)
    max_speed: float | None = eqx.field(static=True)
    velocity: Array
    left: BoundaryCondition
    right: BoundaryCondition

    def __init__(
        self,
        num_spatial_dims: int,
        domain_extent: float,
        num_points: int,
        dt: float,
        *,
        flux: str = "burgers",
        velocity: ArrayLike = 1.0,
        left: BoundaryCondition = Periodic(),
        right: BoundaryCondition = Periodic(),
        max_speed: float | None = 1.0,
        limiter: str = "mc",
    ):
        name = "ConservationLaw"
        check_grid(
            num_spatial_dims, domain_extent, num_points, dt, name=name, dims=(1,)
        )
        if flux not in _FLUXES:
            raise ValueError(f"Unknown flux {flux!r}; choose from {_FLUXES}.")
        check_limiter(limiter)
        self.periodic = check_boundaries(
            left, right, (Periodic, Dirichlet, Outflow), "ConservationLaw"
        )
        self.velocity = jnp.asarray(velocity)
        if jnp.ndim(self.velocity) != 0:
            raise ValueError("`velocity` must be a scalar.")
        if max_speed is not None and flux == "advection" and is_concrete(self.velocity):
            max_speed = max(max_speed, abs(float(self.velocity)))
        dx = domain_extent / num_points
        if max_speed is not None:
            check_courant(
                name,
                dt,
                max_speed / dx,
                SSP_COURANT,
                what="the Courant number max_speed dt/dx",
                values=f"max_speed = {max_speed}, dx = {dx:.3g}",
            )
        self.num_spatial_dims = 1
        self.domain_extent = float(domain_extent)
        self.num_points = num_points
        self.dt = float(dt)
        self.flux_name = flux
        self.limiter = limiter
        self.max_speed = None if max_speed is None else float(max_speed)
        self.left = left
        self.right = right

    def broken_promise(self, u: Field) -> str | None:
        # Advection's speed is the velocity, whatever the state.
        if self.flux_name != "burgers":
            return None
        return speed_promise("ConservationLaw", self.max_speed, u)

    def _flux(self) -> tuple[Callable, Callable]:
        if self.flux_name == "burgers":
            return (lambda u: 0.5 * u**2), jnp.abs
        a = self.velocity
        return (lambda u: a.astype(u.dtype) * u), (
            lambda u: jnp.broadcast_to(jnp.abs(a).astype(u.dtype), u.shape)
        )

    def _ghosts(self, bc, edge, t):
        if isinstance(bc, Dirichlet):
            return jnp.full(2, bc.at(t, edge.dtype))
        return jnp.full(2, edge)  # Outflow: zero gradient

    def fluxes(self, u: Field, t: ScalarLike = 0.0) -> Float[Array, " faces"]:
        """The numerical fluxes at the `N + 1` faces, both ends included."""
        v = u[0]
        if self.periodic:
            padded = jnp.pad(v, 2, mode="wrap")
        else:
            padded = jnp.concatenate(
                [
                    self._ghosts(self.left, v[0], t),
                    v,
                    self._ghosts(self.right, v[-1], t),
                ]
            )
        return rusanov_fluxes(padded, *self._flux(), self.limiter)

    def step(
        self, u: FieldLike, t: ScalarLike = 0.0
    ) -> tuple[Field, Float[Array, "2"]]:
        """One SSP-RK3 step. **Returns:** `(u⁺, inflow)` with `inflow` the mass that
        entered through (left, right) over the step; `mass(u⁺) - mass(u) ==
        inflow.sum()` to round-off."""
        u = check_state(u, (1, self.num_points))
        return ssp_rk3(self._rate, u, t, self.dt)
