"""CG and PCG: the documented stopping rule, preconditioning, lineax interop."""

import jax
import jax.numpy as jnp
import lineax as lx
import pytest
from cases import KAPPA0, SOURCE0

import diffphys as dp


im = dp.implicit
ROUGH_KAPPA = jnp.exp(3.0 * jnp.sin(jnp.arange(256.0).reshape(16, 16) ** 1.3))


@pytest.mark.parametrize("rtol,atol", [(1e-4, 0.0), (1e-9, 0.0), (0.0, 1e-3)])
def test_stopping_rule_is_relative_residual(rtol, atol):
    # Stops at the first iterate with ||b - A x|| <= rtol ||b|| + atol: the returned
    # one meets it, the one before does not.
    operator = dp.solvers.poisson.DiffusionOperator(ROUGH_KAPPA, 1.0)
    b = jnp.cos(jnp.arange(256.0).reshape(16, 16))
    tol = rtol * jnp.linalg.norm(b) + atol
    sol = im.linear_solve(operator, b, im.CG(rtol=rtol, atol=atol, max_steps=2000))
    assert sol.stats["residual_norm"] <= tol * (1 + 1e-6)
    assert jnp.allclose(
        sol.stats["residual_norm"], jnp.linalg.norm(b - operator(sol.value))
    )
    n = int(sol.stats["num_steps"])
    early = im.linear_solve(
        operator, b, im.CG(rtol=rtol, atol=atol, max_steps=n - 1), throw=False
    )
    assert early.result == dp.RESULTS.max_steps_reached
    assert early.stats["residual_norm"] > tol


def test_pcg_jacobi_needs_fewer_steps_and_agrees():
    operator = dp.solvers.poisson.DiffusionOperator(ROUGH_KAPPA, 1.0)
    b = jnp.ones((16, 16))
    cg = im.linear_solve(operator, b, im.CG(rtol=1e-10, max_steps=5000))
    pcg = im.linear_solve(
        operator, b, im.PCG(im.Jacobi(operator.diagonal()), rtol=1e-10, max_steps=5000)
    )
    assert pcg.stats["num_steps"] < 0.5 * cg.stats["num_steps"]
    assert jnp.allclose(cg.value, pcg.value, rtol=1e-8)


def test_diagonal_matches_the_operator():
    operator = dp.solvers.poisson.DiffusionOperator(KAPPA0[:4, :4], 1.0)
    matrix = jax.jacfwd(operator)(jnp.zeros((4, 4))).reshape(16, 16)
    assert jnp.allclose(jnp.diag(matrix), operator.diagonal().ravel())


def test_exact_solution_of_a_dense_spd_system(getkey):
    m = jax.random.normal(getkey(), (6, 6))
    matrix = m @ m.T + 6 * jnp.eye(6)
    b = jax.random.normal(getkey(), (6,))
    sol = im.linear_solve(lambda x: matrix @ x, b, im.CG(rtol=1e-14, max_steps=50))
    assert jnp.allclose(sol.value, jnp.linalg.solve(matrix, b), rtol=1e-10)
    as_matrix = im.linear_solve(matrix, b, im.CG(rtol=1e-14, max_steps=50))
    assert jnp.allclose(as_matrix.value, sol.value, rtol=1e-12)
    # CG terminates in at most n steps in exact arithmetic.
    assert sol.stats["num_steps"] <= 8


def test_semidefinite_neumann_system_in_range():
    # A 1D pure-Neumann Laplacian is singular (constants); CG solves it for b in range.
    n = 32

    def neumann(x):
        padded = jnp.concatenate([x[:1], x, x[-1:]])
        return 2 * x - padded[:-2] - padded[2:]

    b = jnp.sin(2 * jnp.pi * (jnp.arange(n, dtype=float) + 0.5) / n)
    sol = im.linear_solve(neumann, b, im.CG(rtol=1e-12, max_steps=200))
    assert sol.stats["residual_norm"] <= 1e-12 * jnp.linalg.norm(b)


def test_lineax_solver_and_lineax_operator():
    operator = dp.solvers.poisson.DiffusionOperator(KAPPA0, 1.0)
    lx_operator = lx.FunctionLinearOperator(operator, jax.eval_shape(lambda: SOURCE0))
    lu = im.linear_solve(lx_operator, SOURCE0, lx.LU())
    cg = im.linear_solve(lx_operator, SOURCE0, im.CG(rtol=1e-13, max_steps=400))
    assert jnp.allclose(lu.value, cg.value, rtol=1e-10)
    # Our CG is a lineax solver too.
    tagged = lx.TaggedLinearOperator(lx_operator, lx.positive_semidefinite_tag)
    via_lineax = lx.linear_solve(tagged, SOURCE0, im.CG(rtol=1e-13, max_steps=400))
    assert jnp.allclose(via_lineax.value, cg.value, rtol=1e-10)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dtype_is_kept(dtype):
    operator = dp.solvers.poisson.DiffusionOperator(KAPPA0.astype(dtype), 1.0)
    rtol = 1e-5 if dtype == jnp.float32 else 1e-12
    sol = im.linear_solve(
        operator, SOURCE0.astype(dtype), im.CG(rtol=rtol, max_steps=400)
    )
    assert sol.value.dtype == dtype
    grad = jax.grad(
        lambda k: jnp.sum(
            im.linear_solve(
                dp.solvers.poisson.DiffusionOperator(k, 1.0),
                SOURCE0.astype(dtype),
                im.CG(rtol=rtol, max_steps=400),
            ).value
        )
    )(KAPPA0.astype(dtype))
    assert grad.dtype == dtype and jnp.all(jnp.isfinite(grad))
