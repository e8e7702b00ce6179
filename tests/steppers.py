"""One list of every grid time stepper, for the cross-cutting tests (jit, vmap,
gradients, dtypes) that sweep them through `dp.solvers.AbstractStepper`.

Each case builds its stepper from one scalar physical parameter (`make(p)`, so a
gradient and a vmap over the constructor reach it) and gives smooth initial states
on its grid (`state(b)`, `b` in (0, 1) varying the amplitude).
"""

import dataclasses
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

import diffphys as dp
from diffphys.solvers.burgers import exact


S = dp.solvers
L = 2 * np.pi
N = 32


def _cole_hopf(b):
    x = jnp.arange(N, dtype=float) * L / N
    u = exact.cole_hopf_single_mode(x, 0.0, viscosity=0.1, a=1.0, b=b, domain_extent=L)
    return u[None]


def _vector(b):
    x = jnp.arange(16, dtype=float) * L / 16
    xx, yy = jnp.meshgrid(x, x, indexing="ij")
    return b * jnp.stack([jnp.sin(xx) * jnp.cos(yy), 0.5 * jnp.cos(xx + yy)])


def _cells(b, n=16):
    # No symmetry about a face or a cell: a symmetric state ties the slope
    # limiter's arguments exactly, where it is not differentiable.
    x = (jnp.arange(n, dtype=float) + 0.5) / n
    return (0.5 + 0.4 * b * jnp.cos(2 * np.pi * x + 0.3) + 0.05 * jnp.sin(6 * x))[None]


@dataclasses.dataclass(frozen=True)
class StepperCase:
    name: str
    make: Callable
    param: float
    state: Callable
    steps: int

    def __repr__(self):
        return self.name


STEPPERS = [
    StepperCase(
        "burgers-spectral",
        lambda nu: S.BurgersSpectral(1, L, N, 0.05, viscosity=nu, max_speed=1.5),
        0.1,
        _cole_hopf,
        10,
    ),
    StepperCase(
        "burgers-spectral-etdrk4",
        lambda nu: S.BurgersSpectral(
            1, L, N, 0.05, viscosity=nu, order=4, max_speed=1.5
        ),
        0.1,
        _cole_hopf,
        10,
    ),
    StepperCase(
        "burgers-spectral-2d",
        lambda nu: S.BurgersSpectral(2, L, 16, 0.05, viscosity=nu, order=3),
        0.1,
        _vector,
        5,
    ),
    StepperCase(
        "burgers-fv",
        lambda nu: S.BurgersFV(1, L, N, 0.02, viscosity=nu, max_speed=1.5),
        0.1,
        _cole_hopf,
        10,
    ),
    StepperCase(
        "burgers-implicit",
        lambda nu: S.BurgersImplicit(1, L, N, 0.05, viscosity=nu),
        0.1,
        _cole_hopf,
        10,
    ),
    StepperCase(
        "porous-medium",
        lambda m: S.PorousMedium(
            1,
            1.0,
            16,
            0.01,
            diffusivity=S.PowerLaw(m),
            left=S.Dirichlet(0.5),
            right=S.Neumann(0.0),
        ),
        1.5,
        _cells,
        4,
    ),
    StepperCase(
        "conservation-law",
        lambda a: S.ConservationLaw(
            1, 1.0, 16, 0.02, flux="advection", velocity=a, max_speed=None
        ),
        0.8,
        _cells,
        6,
    ),
]
