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
