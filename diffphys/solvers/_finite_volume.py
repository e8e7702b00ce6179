"""MUSCL reconstruction and the Rusanov flux, shared by the finite-volume solvers of
hyperbolic conservation laws (`BurgersFV`, `ConservationLaw`)."""

from collections.abc import Callable

import jax.numpy as jnp

from .._custom_types import Array


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
