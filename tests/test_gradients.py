"""Gradients of every implicit layer: against central finite differences, against
backpropagation through the iterations, in reverse and forward mode, under jit and
vmap."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
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


def test_implicit_gradient_cost_does_not_depend_on_forward_iterations():
    # The backward pass of ImplicitAdjoint is one adjoint solve: its jaxpr holds no
    # loop over the forward iterations, whatever max_steps is.
    case = CASES[0]

    def count_loops(max_steps):
        def loss(theta):
            op = dp.solvers.poisson.DiffusionOperator(theta, 1.0)
            solver = dp.implicit.CG(rtol=1e-13, max_steps=max_steps)
            return jnp.sum(dp.implicit.linear_solve(op, op.diagonal(), solver).value)

        jaxpr = jax.make_jaxpr(jax.grad(loss))(case.theta)
        return str(jaxpr).count("while[")

    assert count_loops(50) == count_loops(500)
