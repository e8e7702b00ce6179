"""The diffusion operator against manufactured exact solutions, with the measured
order of convergence; symmetry and the SPD Jacobian of its nonlinear form."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

import diffphys as dp


def _kappa(x, y):
    return 1.0 + 0.5 * jnp.sin(2.0 * x) * jnp.cos(y)


def _u(x, y):
    return jnp.sin(jnp.pi * x) * jnp.sin(jnp.pi * y) * jnp.exp(x)


def _source(x, y):
    # f = -∇·(κ ∇u) from the analytic κ and u, by autodiff.
    def flux(p):
        return _kappa(*p) * jax.grad(lambda q: _u(*q))(p)

    p = jnp.stack([x, y])
    return -jnp.trace(jax.jacfwd(flux)(p))


@functools.partial(jax.jit, static_argnums=0)  # one compilation per grid, not per op
def _error(n):
    operator = dp.solvers.poisson.DiffusionOperator(jnp.ones((n, n)), 1.0)
    x, y = operator.grid()
    operator = dp.solvers.poisson.DiffusionOperator(_kappa(x, y), 1.0)
    f = jax.vmap(jax.vmap(_source))(x, y)
    sol = dp.implicit.linear_solve(
        operator, f, dp.implicit.CG(rtol=1e-12, max_steps=2000)
    )
    return jnp.max(jnp.abs(sol.value - _u(x, y)))


def test_second_order_convergence_against_manufactured_solution():
    ns = np.array([15, 31, 63])
    errors = np.array([float(_error(int(n))) for n in ns])
    slope = np.polyfit(np.log(1.0 / (ns + 1)), np.log(errors), 1)[0]
    assert abs(slope - 2.0) < 0.15, (errors, slope)


def test_operator_is_symmetric_positive_definite(getkey):
    kappa = jnp.exp(jax.random.normal(getkey(), (5, 6)))
    operator = dp.solvers.poisson.DiffusionOperator(kappa, 2.0)
    matrix = jax.jacfwd(operator)(jnp.zeros((5, 6))).reshape(30, 30)
    assert jnp.allclose(matrix, matrix.T)
    assert jnp.min(jnp.linalg.eigvalsh(matrix)) > 0


def test_nonlinear_flux_has_spd_jacobian(getkey):
    operator = dp.solvers.poisson.DiffusionOperator(
        jnp.ones((4, 5)), 1.0, flux=lambda g: g + g**3
    )
    u = jax.random.normal(getkey(), (4, 5))
    jac = jax.jacfwd(operator)(u).reshape(20, 20)
    assert jnp.allclose(jac, jac.T)
    assert jnp.min(jnp.linalg.eigvalsh(jac)) > 0


def test_one_and_three_dimensions():
    for shape in [(7,), (3, 4, 5)]:
        operator = dp.solvers.poisson.DiffusionOperator(jnp.ones(shape), 1.0)
        matrix = jax.jacfwd(operator)(jnp.zeros(shape)).reshape(np.prod(shape), -1)
        h = operator.spacing
        assert jnp.allclose(jnp.diag(matrix), 2 * len(shape) / h**2)
