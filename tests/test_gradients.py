"""Gradients of every implicit layer: against central finite differences, against
backpropagation through the iterations, in reverse and forward mode, under jit and
vmap."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import lineax as lx
import pytest
from cases import CASES
from helpers import central_difference, random_like, relative_error, tree_vdot

import diffphys as dp


IMPLICIT = dp.implicit.ImplicitAdjoint()
UNROLLED = dp.implicit.UnrolledAdjoint()


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_reverse_mode_matches_finite_differences(case, getkey):
    direction = random_like(getkey(), case.theta)
    grad = eqx.filter_jit(jax.grad(case.loss))(case.theta, IMPLICIT)
    fd = central_difference(lambda t: case.loss(t, IMPLICIT), case.theta, direction)
    assert relative_error(tree_vdot(grad, direction), fd) < 1e-6


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_forward_mode_matches_finite_differences(case, getkey):
    direction = random_like(getkey(), case.theta)
    _, jvp = eqx.filter_jit(
        lambda t, v: jax.jvp(lambda s: case.loss(s, IMPLICIT), (t,), (v,))
    )(case.theta, direction)
    fd = central_difference(lambda t: case.loss(t, IMPLICIT), case.theta, direction)
    assert relative_error(jvp, fd) < 1e-6


@pytest.mark.parametrize("case", [c for c in CASES if c.unrolled_is_exact], ids=repr)
def test_implicit_matches_unrolled(case, getkey):
    direction = random_like(getkey(), case.theta)
    grad_implicit = jax.grad(case.loss)(case.theta, IMPLICIT)
    grad_unrolled = jax.grad(case.loss)(case.theta, UNROLLED)
    for a, b in zip(
        jtu.tree_leaves(grad_implicit), jtu.tree_leaves(grad_unrolled), strict=True
    ):
        assert jnp.allclose(a, b, rtol=1e-8, atol=1e-10 * jnp.max(jnp.abs(b)))
    _, jvp_unrolled = jax.jvp(
        lambda s: case.loss(s, UNROLLED), (case.theta,), (direction,)
    )
    assert relative_error(jvp_unrolled, tree_vdot(grad_implicit, direction)) < 1e-8


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_vmap_of_grad_matches_loop(case):
    scales = jnp.array([0.9, 1.1])
    batch = jtu.tree_map(lambda x: jnp.stack([s * x for s in scales]), case.theta)
    batched = jax.jit(jax.vmap(jax.grad(lambda t: case.loss(t, IMPLICIT))))(batch)
    for i, s in enumerate(scales):
        single = jax.grad(case.loss)(
            jtu.tree_map(lambda x, s=s: s * x, case.theta), IMPLICIT
        )
        for a, b in zip(jtu.tree_leaves(batched), jtu.tree_leaves(single), strict=True):
            assert jnp.allclose(a[i], b, rtol=1e-9, atol=1e-12)


def _gradient_peak_bytes(adjoint, max_steps):
    # XLA's compiled peak of the gradient (arguments + outputs + temporaries): a
    # deterministic property of the program, not a timing.
    def loss(kappa):
        operator = dp.solvers.poisson.DiffusionOperator(kappa, 1.0)
        solver = dp.implicit.CG(rtol=1e-10, max_steps=max_steps)
        sol = dp.implicit.linear_solve(
            operator, jnp.ones((16, 16)), solver, adjoint=adjoint, throw=False
        )
        return jnp.sum(sol.value**2)

    kappa = 1.0 + jnp.linspace(0.0, 0.1, 256).reshape(16, 16)
    a = jax.jit(jax.grad(loss)).lower(kappa).compile().memory_analysis()
    return (
        a.argument_size_in_bytes
        + a.output_size_in_bytes
        + a.temp_size_in_bytes
        - a.alias_size_in_bytes
    )


def test_implicit_gradient_memory_does_not_grow_with_forward_iterations():
    # ImplicitAdjoint stores no iterate: its backward memory is flat in max_steps,
    # while plain backpropagation through the iterations (the control) grows.
    implicit = [_gradient_peak_bytes(IMPLICIT, n) for n in (20, 200)]
    unrolled = [_gradient_peak_bytes(UNROLLED, n) for n in (20, 200)]
    assert implicit[1] / implicit[0] <= 1.2
    assert unrolled[1] / unrolled[0] > 5
    assert implicit[1] < unrolled[0]


def _cubic(x, args):
    c, kind, power, slope = args  # a traced scalar, a string, an int, an array
    assert kind == "cubic" and power == 3
    return x**power + slope * x - c


def _scalar_layer(layer, adjoint):
    """A scalar θ ↦ y(θ) through `layer`, and dy/dθ at θ = 3 in closed form."""
    if layer == "root_find":
        # x³ + 2x = θ: x = 1 at θ = 3, dx/dθ = 1 / (3x² + 2)
        solver = dp.implicit.Newton(rtol=1e-12, atol=1e-12, linear_solver=lx.LU())
        return (
            lambda c: (
                dp.implicit.root_find(
                    _cubic,
                    jnp.array(0.5),
                    (c, "cubic", 3, jnp.array(2.0)),
                    solver,
                    adjoint=adjoint,
                ).value
            ),
            0.2,
        )
    if layer == "fixed_point":
        # y = y / 2 + θ / 4: y = θ / 2
        solver = dp.implicit.FixedPointIteration(rtol=1e-13, atol=1e-13)
        return (
            lambda c: (
                dp.implicit.fixed_point(
                    lambda y, a: 0.5 * y + a[0] / 4,
                    jnp.array(0.0),
                    (c, 2),
                    solver,
                    adjoint=adjoint,
                ).value
            ),
            0.5,
        )
    # 4 y = θ: y = θ / 4
    solver = dp.implicit.CG(rtol=1e-13, max_steps=10)
    return lambda c: dp.implicit.linear_solve(
        lambda y: 4.0 * y, c * jnp.ones(2), solver, adjoint=adjoint
    ).value[0], 0.25


@pytest.mark.parametrize("adjoint", [IMPLICIT, UNROLLED], ids=["implicit", "unrolled"])
@pytest.mark.parametrize("layer", ["linear_solve", "root_find", "fixed_point"])
def test_python_scalars_and_weak_types_differentiate(layer, adjoint):
    # `jax.grad(f)(3.0)`: a weakly typed tracer reaches the layer's arguments,
    # beside a string and an int that stay static.
    f, derivative = _scalar_layer(layer, adjoint)
    assert abs(float(jax.grad(f)(3.0)) - derivative) < 1e-10
    _, tangent = jax.jvp(f, (3.0,), (1.0,))
    assert abs(float(tangent) - derivative) < 1e-10
    weak = jnp.asarray(3.0)  # a weakly typed array, under jit
    assert abs(float(jax.jit(jax.grad(f))(weak)) - derivative) < 1e-10
