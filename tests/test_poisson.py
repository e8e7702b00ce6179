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


def _source(x, y, lengths=(1.0, 1.0)):
    # f = -∇·(κ ∇u) from the analytic κ and u (u stretched to the box), by autodiff.
    def u(p):
        return _u(p[0] / lengths[0], p[1] / lengths[1])

    def flux(p):
        return _kappa(*p) * jax.grad(u)(p)

    p = jnp.stack([x, y])
    return -jnp.trace(jax.jacfwd(flux)(p))


@functools.partial(jax.jit, static_argnums=(0, 1))  # one compilation per grid
def _error(shape, lengths=(1.0, 1.0)):
    # The nodes from our own formula, not from the operator under test.
    h = [length / (n + 1) for length, n in zip(lengths, shape, strict=True)]
    axes = [h[a] * jnp.arange(1, n + 1, dtype=float) for a, n in enumerate(shape)]
    x, y = jnp.meshgrid(*axes, indexing="ij")
    extent = lengths if lengths[0] != lengths[1] else lengths[0]
    operator = dp.solvers.poisson.DiffusionOperator(_kappa(x, y), extent)
    f = jax.vmap(jax.vmap(lambda a, b: _source(a, b, lengths)))(x, y)
    sol = dp.implicit.linear_solve(
        operator, f, dp.implicit.CG(rtol=1e-12, max_steps=4000)
    )
    return jnp.max(jnp.abs(sol.value - _u(x / lengths[0], y / lengths[1])))


def test_second_order_convergence_against_manufactured_solution():
    ns = np.array([15, 31, 63])
    errors = np.array([float(_error((int(n), int(n)))) for n in ns])
    slope = np.polyfit(np.log(1.0 / (ns + 1)), np.log(errors), 1)[0]
    assert abs(slope - 2.0) < 0.15, (errors, slope)


def test_second_order_on_grids_with_a_spacing_per_axis():
    # Twice the points along y on the unit square, and a 1 x 2 box: each axis has
    # its own spacing h_a = L_a / (N_a + 1).
    ns = np.array([15, 31, 63])
    for lengths in [(1.0, 1.0), (1.0, 2.0)]:
        errors = np.array(
            [float(_error((int(n), 2 * int(n) + 1), lengths)) for n in ns]
        )
        slope = np.polyfit(np.log(1.0 / (ns + 1)), np.log(errors), 1)[0]
        assert abs(slope - 2.0) < 0.15, (lengths, errors, slope)
        assert errors[-1] < 1e-2, (lengths, errors)


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
        spacings = [1.0 / (n + 1) for n in shape]
        assert jnp.allclose(jnp.diag(matrix), sum(2 / h**2 for h in spacings))
