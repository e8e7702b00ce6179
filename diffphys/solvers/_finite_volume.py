"""The shared pieces of the 1D finite-volume solvers: the cell grid and its flux
budget (`PorousMedium`, `ConservationLaw`), and for hyperbolic laws MUSCL
reconstruction, the Rusanov flux and SSP-RK3 (`BurgersFV`, `ConservationLaw`)."""

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from .._custom_types import Array, Field, Float, ScalarLike
from ._base import AbstractConservativeStepper
from ._boundary import cell_centres


# The Courant number up to which SSP-RK3 with MUSCL fluxes keeps the maximum
# principle (the limit the explicit finite-volume schemes check).
SSP_COURANT = 0.5


class AbstractFiniteVolume1D(AbstractConservativeStepper):
    """`N` cells of width `h = L/N`, updated by differences of face fluxes: the
    update conserves `h Σ u` up to what flows through the two ends, which `step`
    reports."""

    periodic: eqx.AbstractVar[bool]

    @abc.abstractmethod
    def fluxes(self, u: Field, t: ScalarLike = 0.0) -> Float[Array, " faces"]:
        """The fluxes (positive towards `+x`) at the `N + 1` faces, both ends
        included."""

    @property
    def cell_width(self) -> float:
        return self.domain_extent / self.num_points

    @property
    def coordinates(self) -> Float[Array, " N"]:
        """The cell centres."""
        return jnp.asarray(
            cell_centres(self.num_points, self.domain_extent, self.periodic)
        )

    def mass(self, u: Field) -> Array:
        """`h Σ u_i`, the total mass of the cell averages."""
        return self.cell_width * jnp.sum(u)

    def _rate(self, u: Field, t: ScalarLike) -> tuple[Field, Float[Array, "2"]]:
        """`(-(F_{i+½} - F_{i-½}) / h, inflow)`, the inflow rates through the
        (left, right) ends."""
        flux = self.fluxes(u, t)
        inflow = jnp.stack([flux[0], -flux[-1]])
        return -jnp.diff(flux)[None] / self.cell_width, inflow


def _minmod(a, b):
    return 0.5 * (jnp.sign(a) + jnp.sign(b)) * jnp.minimum(jnp.abs(a), jnp.abs(b))


LIMITERS = {
    "minmod": _minmod,
    "mc": lambda a, b: _minmod(_minmod(2 * a, 2 * b), 0.5 * (a + b)),
    "van_leer": lambda a, b: jnp.where(
        a * b > 0, 2 * a * b / jnp.where(a * b > 0, a + b, 1.0), 0.0
    ),
}


def check_limiter(limiter: str) -> None:
    if limiter not in LIMITERS:
        raise ValueError(
            f"Unknown limiter {limiter!r}; choose from {sorted(LIMITERS)}."
        )


def rusanov_fluxes(
    padded: Array,
    flux: Callable[[Array], Array],
    speed: Callable[[Array], Array],
    limiter: str,
) -> Array:
    """Numerical fluxes at the `N + 1` faces of `N` cells.

    `padded` holds the cell averages with two ghost cells on each side, shape
    `(N + 4,)`. Each face gets the MUSCL states (limited linear reconstruction from
    both sides) and the Rusanov (local Lax–Friedrichs) flux
    `½(f(L) + f(R)) - ½ max(|f'(L)|, |f'(R)|)(R - L)`; `speed(u)` is `|f'(u)|`.
    Face `j` lies between cells `j - 1` and `j` (face 0 is the left end).
    """
    du = jnp.diff(padded)  # differences across the N + 3 interior faces of `padded`
    slope = LIMITERS[limiter](du[:-1], du[1:])  # in ghost 1 .. ghost N + 2
    left = padded[1:-2] + 0.5 * slope[:-1]
    right = padded[2:-1] - 0.5 * slope[1:]
    wave = jnp.maximum(speed(left), speed(right))
    return 0.5 * (flux(left) + flux(right)) - 0.5 * wave * (right - left)


def ssp_rk3(rate: Callable, u, t, dt: float):
    """One step of Shu–Osher SSP-RK3 for `u' = r(u, t)`.

    `rate(v, time) -> (r, aux)`; `aux` (a PyTree, or `None`) is a quantity whose
    time integral the step should report, e.g. the boundary fluxes. **Returns:**
    `(u⁺, dt · (aux₀ + aux₁ + 4 aux₂) / 6)`, the stages' quadrature weights, so a
    flux budget matches the update exactly.
    """
    r0, a0 = rate(u, t)
    u1 = u + dt * r0
    r1, a1 = rate(u1, t + dt)
    u2 = 0.75 * u + 0.25 * (u1 + dt * r1)
    r2, a2 = rate(u2, t + dt / 2)
    u_next = u / 3 + 2 / 3 * (u2 + dt * r2)
    budget = jax.tree.map(lambda x, y, z: dt * (x / 6 + y / 6 + 2 * z / 3), a0, a1, a2)
    return u_next, budget
