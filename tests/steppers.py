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


def _ks(b):
    x = jnp.arange(N, dtype=float) * 22.0 / N
    return (
        b * jnp.cos(2 * np.pi * x / 22.0) + 0.3 * b * jnp.sin(6 * np.pi * x / 22.0)
    )[None]


def _ks_2d(b):
    x = jnp.arange(16, dtype=float) * 12.0 / 16
    xx, yy = jnp.meshgrid(x, x, indexing="ij")
    k = 2 * np.pi / 12.0
    return (
        b * (jnp.cos(k * xx) * jnp.sin(k * yy) + 0.4 * jnp.cos(k * (xx + 2 * yy)))[None]
    )


def _vorticity(b):
    x = jnp.arange(16, dtype=float) * L / 16
    xx, yy = jnp.meshgrid(x, x, indexing="ij")
    return b * (jnp.sin(xx) * jnp.sin(yy) + 0.5 * jnp.cos(2 * xx + yy))[None]


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

    # The stepper refuses u <= 0 (diffusion–sorption): the integer-state test then
    # shifts its 0/1 states to 1/2 and skips boolean states.
    positive: bool = False

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
    StepperCase(
        "kuramoto-sivashinsky",
        lambda b: S.KuramotoSivashinsky(1, 22.0, N, 0.1, hyper_diffusion=b),
        1.0,
        _ks,
        10,
    ),
    StepperCase(
        "kuramoto-sivashinsky-2d",
        lambda b: S.KuramotoSivashinsky(2, 12.0, 16, 0.1, hyper_diffusion=b),
        1.0,
        _ks_2d,
        5,
    ),
    StepperCase(
        "navier-stokes",
        lambda nu: S.NavierStokesVorticity(2, L, 16, 0.05, viscosity=nu),
        0.05,
        _vorticity,
        5,
    ),
    StepperCase(
        "diffusion-sorption",
        # Backward Euler (one solve a step) keeps the cross-cutting tests cheap;
        # test_sorption_darcy.py differentiates the default TR-BDF2.
        lambda D: S.DiffusionSorption(
            1, 1.0, 16, 0.5, diffusivity=D, method="backward-euler"
        ),
        0.01,
        _cells,
        4,
        positive=True,
    ),
]
