"""One list of differentiable problems, one per layer and solver, that the
cross-cutting tests (gradients, jit, vmap, dtypes) sweep over.

Each case is `loss(theta, adjoint) -> scalar` with `theta` a PyTree of parameters;
every solve inside is tight (float64), so the implicit derivative is exact to
solver tolerance.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import lineax as lx

import diffphys as dp


im = dp.implicit
SPD = frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})
N = 8


def _grid_field(scale, shift):
    i, j = jnp.meshgrid(
        jnp.arange(N, dtype=float), jnp.arange(N, dtype=float), indexing="ij"
    )
    return jnp.sin(scale * i + shift) * jnp.cos(0.7 * j - shift)


KAPPA0 = 1.0 + 0.4 * _grid_field(0.9, 0.3)
SOURCE0 = 5.0 + _grid_field(1.3, -0.2)


def laplacian_cg(theta, adjoint):
    # Gradient with respect to a 2D diffusion coefficient field inside the operator.
    operator = dp.solvers.poisson.DiffusionOperator(theta, 1.0)
    sol = im.linear_solve(
        operator, SOURCE0, im.CG(rtol=1e-13, max_steps=400), adjoint=adjoint
    )
    return jnp.sum(jnp.sin(sol.value))


def rhs_pcg(theta, adjoint):
    # Gradient with respect to the right-hand side, through Jacobi-preconditioned CG.
    operator = dp.solvers.poisson.DiffusionOperator(KAPPA0, 1.0)
    solver = im.PCG(im.Jacobi(operator.diagonal()), rtol=1e-13, max_steps=400)
    sol = im.linear_solve(operator, theta, solver, adjoint=adjoint)
    return jnp.sum(sol.value**2)


def pytree_cg(theta, adjoint):
    # A block-diagonal SPD operator on a dict, parameters both in operator and rhs.
    def operator(x):
        return {
            "a": theta["d"] * x["a"]
            + 0.1 * jnp.roll(x["a"], 1)
            + 0.1 * jnp.roll(x["a"], -1),
            "b": 2.0 * x["b"],
        }

    b = {"a": theta["r"], "b": jnp.ones(3)}
    sol = im.linear_solve(
        operator, b, im.CG(rtol=1e-13, max_steps=100), adjoint=adjoint
    )
    return jnp.sum(sol.value["a"] ** 3) + jnp.sum(sol.value["b"])


def _semilinear(u, theta):
    kappa, source = theta
    return dp.solvers.poisson.DiffusionOperator(kappa, 1.0)(u) + u**3 - source


def newton_cg(theta, adjoint):
    solver = im.Newton(
        rtol=1e-12, atol=1e-12, linear_solver=im.CG(rtol=1e-13, max_steps=400)
    )
    sol = im.root_find(
        _semilinear, jnp.zeros((N, N)), theta, solver, adjoint=adjoint, tags=SPD
    )
    return jnp.sum(sol.value**2)


def newton_closure(theta, adjoint):
    # The parameter enters through a closure, not through `args`.
    def residual(u, _):
        return u**3 + theta * u - 1.0

    solver = im.Newton(rtol=1e-12, atol=1e-12, linear_solver=lx.LU())
    sol = im.root_find(residual, jnp.ones(4), None, solver, adjoint=adjoint)
    return jnp.sum(sol.value**2)


def _advection_reaction(u, theta):
    # Non-symmetric Jacobian: upwind advection + diffusion + reaction, 1D periodic.
    velocity, source = theta
    diffusion = 2 * u - jnp.roll(u, 1) - jnp.roll(u, -1)
    advection = velocity * (u - jnp.roll(u, 1))
    return diffusion + advection + jnp.sinh(u) - source


def newton_gmres(theta, adjoint):
    solver = im.Newton(
        rtol=1e-12, atol=1e-12, linear_solver=lx.GMRES(rtol=1e-13, atol=1e-13)
    )
    sol = im.root_find(
        _advection_reaction, jnp.zeros(12), theta, solver, adjoint=adjoint
    )
    return jnp.sum(jnp.cos(sol.value))


def _contraction(y, a):
    return 0.5 * jnp.tanh(y[::-1]) + a


def fixed_point_iteration(theta, adjoint):
    solver = im.FixedPointIteration(rtol=1e-13, atol=1e-13, max_steps=200)
    sol = im.fixed_point(_contraction, jnp.zeros(6), theta, solver, adjoint=adjoint)
    return jnp.sum(sol.value**3)


def anderson(theta, adjoint):
    solver = im.Anderson(rtol=1e-13, atol=1e-13, max_steps=100, memory=4)
    sol = im.fixed_point(_contraction, jnp.zeros(6), theta, solver, adjoint=adjoint)
    return jnp.sum(sol.value**3)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    loss: Callable[[Any, Any], Any]
    theta: Any
    # False where backpropagating through the iterations does not give the exact
    # derivative of the solution (Anderson: its mixing weights are functions of the
    # residuals, whose derivatives carry no information once they vanish).
    unrolled_is_exact: bool = True

    def __repr__(self):
        return self.name


CASES = [
    Case("linear_solve-CG-coefficient", laplacian_cg, KAPPA0),
    Case("linear_solve-PCG-rhs", rhs_pcg, SOURCE0),
    Case(
        "linear_solve-CG-pytree",
        pytree_cg,
        {"d": jnp.linspace(2.0, 3.0, 5), "r": jnp.linspace(-1.0, 1.0, 5)},
    ),
    Case("root_find-Newton-CG", newton_cg, (KAPPA0, SOURCE0)),
    Case("root_find-Newton-closure", newton_closure, jnp.array([0.5, 1.0, 2.0, 3.0])),
    Case(
        "root_find-Newton-GMRES",
        newton_gmres,
        (jnp.array(0.7), jnp.linspace(-1.0, 2.0, 12)),
    ),
    Case("fixed_point-iteration", fixed_point_iteration, jnp.linspace(-0.5, 0.5, 6)),
    Case("fixed_point-Anderson", anderson, jnp.linspace(-0.5, 0.5, 6), False),
]
