"""jaxopt solvers as the inner solver of root_find and fixed_point (extra `jaxopt`;
`make test` installs it)."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest
from helpers import central_difference, relative_error

import diffphys as dp


jaxopt = pytest.importorskip("jaxopt")
im = dp.implicit


def _cube_root(y, a):
    return y**3 - a


def _contraction(y, a):
    return 0.5 * jnp.tanh(y[::-1]) + a


ROOT = [
    im.Jaxopt("Broyden", tol=1e-12, maxiter=100),
    im.Jaxopt(jaxopt.Broyden, tol=1e-12, maxiter=100),
]
FIXED = [
    im.Jaxopt("FixedPointIteration", tol=1e-13, maxiter=200),
    im.Jaxopt("AndersonAcceleration", tol=1e-13, maxiter=200, history_size=4),
]


@pytest.mark.parametrize("solver", ROOT, ids=["by-name", "by-class"])
def test_jaxopt_root_finder(solver):
    a = jnp.array([2.0, 3.0, 5.0])

    def loss(a, adjoint):
        return jnp.sum(
            im.root_find(_cube_root, jnp.ones(3), a, solver, adjoint=adjoint).value ** 2
        )

    sol = im.root_find(_cube_root, jnp.ones(3), a, solver)
    assert jnp.allclose(sol.value, a ** (1 / 3), rtol=1e-10)
    assert sol.result == dp.RESULTS.successful
    grad = jax.jit(jax.grad(loss), static_argnums=1)(a, im.ImplicitAdjoint())
    exact = (2 / 3) * a ** (-1 / 3)  # d/da (a^{1/3})^2
    assert jnp.allclose(grad, exact, rtol=1e-8)
    unrolled = jax.grad(loss)(a, im.UnrolledAdjoint())
    assert jnp.allclose(unrolled, exact, rtol=1e-6)


@pytest.mark.parametrize(
    "solver", FIXED, ids=["FixedPointIteration", "AndersonAcceleration"]
)
def test_jaxopt_fixed_point_matches_native(solver):
    a = jnp.linspace(-0.5, 0.5, 6)
    direction = jnp.cos(jnp.arange(6.0))

    def loss(a):
        return jnp.sum(im.fixed_point(_contraction, jnp.zeros(6), a, solver).value ** 3)

    native = im.fixed_point(
        _contraction, jnp.zeros(6), a, im.FixedPointIteration(rtol=1e-13, atol=1e-13)
    )
    assert jnp.allclose(
        im.fixed_point(_contraction, jnp.zeros(6), a, solver).value,
        native.value,
        atol=1e-11,
    )
    grad = jax.grad(loss)(a)
    assert (
        relative_error(
            jnp.vdot(grad, direction), central_difference(loss, a, direction)
        )
        < 1e-6
    )


def test_wrong_kind_of_jaxopt_solver_is_refused():
    with pytest.raises(ValueError, match="fixed-point solver"):
        im.fixed_point(_contraction, jnp.zeros(6), jnp.zeros(6), ROOT[0])
    with pytest.raises(ValueError, match="not a jaxopt root solver"):
        im.root_find(_cube_root, jnp.ones(3), jnp.ones(3), FIXED[0])
    with pytest.raises(ValueError, match="adjoint="):
        im.Jaxopt("Broyden", implicit_diff=True)


def test_jaxopt_is_not_imported_by_diffphys():
    code = "import sys, diffphys; print('jaxopt' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
