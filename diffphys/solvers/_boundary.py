"""Boundary conditions of the non-periodic finite-volume solvers (`PorousMedium`,
`ConservationLaw`). Values may be constants (array fields, so gradients flow to
them) or functions of time `t -> value` (an `eqx.Module` or any callable; a Module's
array fields receive gradients too)."""

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._custom_types import Array, ArrayLike, Scalar, ScalarLike


def _value(value, t, dtype) -> Array:
    out = value(t) if callable(value) else value
    if jnp.ndim(out) != 0:
        raise ValueError(
            f"A boundary value must be a scalar (or t -> scalar), got shape "
            f"{jnp.shape(out)}."
        )
    return jnp.asarray(out, dtype)


class Periodic(eqx.Module):
    """Periodic: the domain wraps around (both ends must be `Periodic`)."""


class Dirichlet(eqx.Module):
    """The value `u = g` (or `g(t)`) on the boundary; for hyperbolic solvers an
    inflow state (the ghost cells hold `g`)."""

    value: Array | Callable[[Scalar], ScalarLike]

    def __init__(self, value: ArrayLike | Callable[[Scalar], ScalarLike]):
        self.value = value if callable(value) else jnp.asarray(value)

    def at(self, t, dtype) -> Array:
        return _value(self.value, t, dtype)


class Neumann(eqx.Module):
    """A prescribed flux `q` (or `q(t)`) **into** the domain through this end (so
    `q = -k(u) ∂u/∂n` with `n` the outward normal); `0` is an insulated wall."""

    flux: Array | Callable[[Scalar], ScalarLike]

    def __init__(self, flux: ArrayLike | Callable[[Scalar], ScalarLike] = 0.0):
        self.flux = flux if callable(flux) else jnp.asarray(flux)

    def at(self, t, dtype) -> Array:
        return _value(self.flux, t, dtype)


class Outflow(eqx.Module):
    """Transmissive (zero-gradient) boundary of a hyperbolic solver: waves leave the
    domain without reflection; nothing should flow in through it."""


BoundaryCondition = Periodic | Dirichlet | Neumann | Outflow


def check_boundaries(left, right, allowed: tuple[type, ...], solver: str) -> bool:
    """Refuse unknown or mixed-periodic pairs; returns whether the domain is
    periodic."""
    names = ", ".join(t.__name__ for t in allowed)
    for side, bc in (("left", left), ("right", right)):
        if not isinstance(bc, allowed):
            raise ValueError(
                f"{solver}: `{side}` must be one of {names} (from dp.solvers), got "
                f"{type(bc).__name__}."
            )
    periodic = isinstance(left, Periodic), isinstance(right, Periodic)
    if periodic[0] != periodic[1]:
        raise ValueError(
            f"{solver}: Periodic must be on both ends or neither; got left="
            f"{type(left).__name__}, right={type(right).__name__}."
        )
    return periodic[0]


def cell_centres(num_points: int, domain_extent: float, periodic: bool) -> np.ndarray:
    """Cell centres of the finite-volume grids (NumPy, float64): `i h` on a periodic
    domain (the periodic-grid convention), `(i + ½) h` on `[0, L]` otherwise."""
    offset = 0.0 if periodic else 0.5
    return (np.arange(num_points) + offset) * domain_extent / num_points
