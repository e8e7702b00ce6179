"""Failed solves are reported (RESULTS with throw=False, a clear error with
throw=True); bad input is refused with a ValueError that names the fix; NaN input is
reported, never propagated silently."""

import equinox as eqx
import jax.numpy as jnp
import lineax as lx
import pytest
from cases import KAPPA0, SOURCE0

import diffphys as dp


im = dp.implicit
R = dp.RESULTS
OPERATOR = dp.solvers.poisson.DiffusionOperator(KAPPA0, 1.0)


def _cubic(y, a):
    return y**3 - 2 * y + a


def _newton_stall(**kw):
    # |y^3 - 2y + 2| has a non-zero local minimum near y = 0.82 that traps Newton
    # started at 0 (the only real root is near -1.77).
    return im.root_find(
        _cubic,
        jnp.array([0.0]),
        jnp.array(2.0),
        im.Newton(rtol=1e-10, linear_solver=lx.LU()),
        **kw,
    )


NOT_CONVERGED = {
    "linear_solve": lambda **kw: im.linear_solve(
        OPERATOR, SOURCE0, im.CG(rtol=1e-12, max_steps=3), **kw
    ),
    "root_find": lambda **kw: im.root_find(
        _cubic,
        jnp.array([-1.0]),
        jnp.array(2.0),
        im.Newton(rtol=1e-12, max_steps=1, linear_solver=lx.LU()),
        **kw,
    ),
    "fixed_point": lambda **kw: im.fixed_point(
        lambda y, a: 0.9 * jnp.cos(y) + a,
        jnp.zeros(3),
        jnp.ones(3),
        im.FixedPointIteration(rtol=1e-12, max_steps=2),
        **kw,
    ),
}
EXPECTED = {
    "linear_solve": R.max_steps_reached,
    "root_find": R.nonlinear_max_steps_reached,
    "fixed_point": R.nonlinear_max_steps_reached,
}


@pytest.mark.parametrize("layer", sorted(NOT_CONVERGED))
def test_non_convergence_is_a_result_without_throw(layer):
    sol = NOT_CONVERGED[layer](throw=False)
    assert sol.result == EXPECTED[layer]
    assert jnp.all(jnp.isfinite(sol.value))
    assert sol.stats["num_steps"] == sol.stats["max_steps"]


@pytest.mark.parametrize("layer", sorted(NOT_CONVERGED))
def test_non_convergence_raises_with_throw(layer):
    with pytest.raises(eqx.EquinoxRuntimeError, match="max_steps"):
        NOT_CONVERGED[layer]()


def test_line_search_failure_keeps_the_best_iterate():
    sol = _newton_stall(throw=False)
    assert sol.result == R.line_search_failed
    # It stopped where |F| is smallest along the path, near the local minimum 0.911.
    assert 0.9 < float(sol.stats["residual_norm"]) < 1.0
    with pytest.raises(eqx.EquinoxRuntimeError, match="line search"):
        _newton_stall()


@pytest.mark.parametrize(
    "inner",
    [
        # CG on a symmetric indefinite Jacobian declared SPD
        im.CG(rtol=1e-10, max_steps=50),
        # GMRES without enough iterations
        lx.GMRES(rtol=1e-10, atol=1e-10, max_steps=1, restart=1),
    ],
    ids=["cg-indefinite", "gmres-max-steps"],
)
def test_a_failed_inner_linear_solve_is_named_as_the_cause(inner):
    def residual(y, a):
        return jnp.array([1.0, -1.0, 2.0]) * y + 0.1 * y**3 - a

    tags = frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})
    sol = im.root_find(
        residual,
        jnp.zeros(3),
        jnp.ones(3),
        im.Newton(rtol=1e-10, linear_solver=inner),
        tags=tags if isinstance(inner, im.CG) else frozenset(),
        throw=False,
    )
    assert sol.result == R.newton_linear_solve_failed


def test_cg_detects_an_indefinite_operator():
    sol = im.linear_solve(lambda x: -OPERATOR(x), SOURCE0, throw=False)
    assert sol.result == R.not_positive_definite
    with pytest.raises(
        eqx.EquinoxRuntimeError, match="not symmetric positive definite"
    ):
        im.linear_solve(lambda x: -OPERATOR(x), SOURCE0)


NAN_INPUTS = {
    "linear_solve-b": lambda **kw: im.linear_solve(
        OPERATOR, SOURCE0.at[2, 3].set(jnp.nan), **kw
    ),
    "linear_solve-operator": lambda **kw: im.linear_solve(
        dp.solvers.poisson.DiffusionOperator(KAPPA0.at[0, 0].set(jnp.nan), 1.0),
        SOURCE0,
        **kw,
    ),
    "root_find-args": lambda **kw: im.root_find(
        _cubic, jnp.array([-1.0]), jnp.array(jnp.nan), **kw
    ),
    "root_find-y0": lambda **kw: im.root_find(
        _cubic, jnp.array([jnp.nan]), jnp.array(2.0), **kw
    ),
    "fixed_point-args": lambda **kw: im.fixed_point(
        lambda y, a: 0.5 * y + a, jnp.zeros(2), jnp.array([1.0, jnp.inf]), **kw
    ),
    "anderson-args": lambda **kw: im.fixed_point(
        lambda y, a: 0.5 * y + a,
        jnp.zeros(2),
        jnp.array([1.0, jnp.nan]),
        im.Anderson(),
        **kw,
    ),
}


@pytest.mark.parametrize("name", sorted(NAN_INPUTS))
def test_nan_input_is_reported(name):
    sol = NAN_INPUTS[name](throw=False)
    assert sol.result == R.nonfinite_value
    with pytest.raises(eqx.EquinoxRuntimeError, match="NaN or inf"):
        NAN_INPUTS[name]()


def _square(x):
    return 2.0 * x


BAD_INPUT = {
    "operator changes shape": (
        lambda: im.linear_solve(lambda x: jnp.ravel(x), jnp.ones((3, 3))),
        "map `b`'s shape to itself",
    ),
    "non-square lineax operator": (
        lambda: im.linear_solve(lx.MatrixLinearOperator(jnp.ones((3, 4))), jnp.ones(3)),
        "not square",
    ),
    "b does not fit the operator": (
        lambda: im.linear_solve(lx.MatrixLinearOperator(jnp.eye(4)), jnp.ones(3)),
        "does not match `b`",
    ),
    "non-square matrix": (
        lambda: im.linear_solve(jnp.ones((3, 4)), jnp.ones(3)),
        "not square",
    ),
    "integer right-hand side": (
        lambda: im.linear_solve(_square, jnp.ones(3, dtype=jnp.int32)),
        "floating point",
    ),
    "mismatched pytrees": (
        lambda: im.linear_solve(
            lambda x: (x["a"], x["b"]), {"a": jnp.ones(2), "b": jnp.ones(2)}
        ),
        "square system",
    ),
    "residual of another shape": (
        lambda: im.root_find(lambda y, a: jnp.concatenate([y, y]), jnp.ones(3)),
        "same PyTree structure and shapes as y0",
    ),
    "residual of another structure": (
        lambda: im.root_find(lambda y, a: [y[0]], (jnp.ones(2), jnp.ones(2))),
        "same PyTree structure",
    ),
    "fixed-point map of another shape": (
        lambda: im.fixed_point(lambda y, a: y[:2], jnp.ones(3)),
        "same PyTree structure and shapes as y0",
    ),
    "unrolled lineax solver": (
        lambda: im.linear_solve(
            _square, jnp.ones(3), lx.LU(), adjoint=im.UnrolledAdjoint()
        ),
        "UnrolledAdjoint can only unroll",
    ),
    "negative tolerance": (lambda: im.CG(rtol=-1.0), "Tolerances must be >= 0"),
    "zero tolerances in Newton": (
        lambda: im.Newton(rtol=0.0, atol=0.0),
        "not both zero",
    ),
    "Anderson without memory": (lambda: im.Anderson(memory=0), "`memory` must be >= 1"),
    "operator on the wrong grid": (
        lambda: OPERATOR(jnp.ones((4, 4))),
        "shape of kappa",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUT))
def test_bad_input_names_the_fix(name):
    call, message = BAD_INPUT[name]
    with pytest.raises(ValueError, match=message):
        call()
