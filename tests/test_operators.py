"""Neural operators: shapes, jit/vmap, resolution transfer, gradients, errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from helpers import central_difference, random_like, tree_vdot

import diffphys as dp


# One compilation per model and input shape, not one per operation.
_call = eqx.filter_jit(lambda model, u: model(u))


def _smooth(n):
    x = jnp.arange(n, dtype=float) / n
    return (jnp.sin(2 * jnp.pi * x) + 0.5 * jnp.cos(2 * jnp.pi * 3 * x))[None]


def _operator(kind, d, cin, cout, key):
    ops = dp.operators
    small = dict(modes=4, width=8, num_layers=2, key=key)
    if kind == "fno":
        return ops.FNO(d, cin, cout, **small)
    if kind == "dymixop":
        return ops.DyMixOp(d, cin, cout, tau=0.05, **small)
    # JAWS around a residual FNO (same channels in and out)
    k1, k2 = jr.split(key)
    return ops.JAWS(
        ops.Residual(ops.FNO(d, cin, cin, **{**small, "key": k1})), d, cin, key=k2
    )


@pytest.mark.parametrize("kind", ["fno", "dymixop", "jaws"])
@pytest.mark.parametrize("d", [1, 2])
def test_operator_shapes_jit_and_vmap(getkey, d, kind):
    cout = 2 if kind == "jaws" else 3
    op = _operator(kind, d, 2, cout, getkey())
    u = jr.normal(getkey(), (5, 2) + (16,) * d)
    out = jax.vmap(op)(u)
    assert out.shape == (5, cout) + (16,) * d
    assert bool(jnp.all(jnp.isfinite(out)))
    jitted = eqx.filter_jit(lambda model, x: jax.vmap(model)(x))
    np.testing.assert_allclose(jitted(op, u), out, rtol=1e-12, atol=1e-12)
    assert isinstance(op, dp.operators.AbstractOperator)
    # usable wherever a stepper is
    square = _operator(kind, d, 2, 2, getkey())
    assert dp.solvers.rollout(square, u[0], 3).shape == (4, 2) + (16,) * d


def test_fno_spectral_layer_keeps_only_low_modes(getkey):
    layer = dp.operators.SpectralConv(1, 1, 1, modes=3, key=getkey())
    x = jnp.arange(32, dtype=float) / 32
    high = jnp.sin(2 * jnp.pi * 5 * x)[None]  # mode 5 >= 3: annihilated
    np.testing.assert_allclose(layer(high), 0.0, atol=1e-12)
    low = jnp.sin(2 * jnp.pi * 2 * x)[None]
    assert float(jnp.abs(layer(low)).max()) > 1e-3


def test_fno_resolution_transfer(getkey):
    """The same weights on 64, 128 and 256 points give the same values at shared
    points for a smooth input, to within the aliasing of the GELU's harmonics
    (pointwise maps commute with subsampling; the spectral part sees the same
    modes)."""
    fno = dp.operators.FNO(1, 1, 1, modes=8, width=16, key=getkey())
    a, b, c = (_call(fno, _smooth(n)) for n in (64, 128, 256))
    scale = float(jnp.abs(c).max())
    coarse = float(jnp.abs(a - c[:, ::4]).max()) / scale
    fine = float(jnp.abs(b - c[:, ::2]).max()) / scale
    assert scale > 1e-3 and max(coarse, fine) < 1e-6


@pytest.mark.parametrize("kind", ["fno", "dymixop"])
def test_operator_gradients_match_finite_differences(getkey, kind):
    op = _operator(kind, 1, 1, 1, getkey())
    u = _smooth(16)
    params, static = eqx.partition(op, eqx.is_inexact_array)

    @jax.jit  # one compilation for the probes, not one per operation
    def loss(p):
        return jnp.sum(eqx.combine(p, static)(u) ** 2)

    grads = jax.jit(jax.grad(loss))(params)
    direction = random_like(getkey(), params)
    directional = tree_vdot(grads, direction)
    np.testing.assert_allclose(
        directional, central_difference(loss, params, direction), rtol=1e-6
    )


def test_operator_bad_input(getkey):
    fno = dp.operators.FNO(1, 1, 1, modes=8, width=8, key=getkey())
    with pytest.raises(ValueError, match="at least 16 points"):
        fno(_smooth(8))
    with pytest.raises(ValueError, match="1 spatial axes"):
        fno(jnp.ones((1, 16, 16)))
    with pytest.raises(ValueError, match="1 spatial axes"):
        dp.operators.DyMixOp(1, 1, 1, modes=4, width=4, key=getkey())(
            jnp.ones((1, 8, 8))
        )
    with pytest.raises(ValueError, match="kernel_size"):
        dp.operators.DyMixOp(1, 1, 1, kernel_size=2, key=getkey())
    with pytest.raises(ValueError, match="variance"):
        dp.operators.JAWS(fno, 1, 1, variance="global", key=getkey())
    with pytest.raises(ValueError, match="num_spatial_dims"):
        dp.operators.FNO(4, 1, 1, key=getkey())


# --------------------------------------------------------------------------------
# DyMixOp


def _fixed_stencil(stencil, taps):
    """`stencil` with its first channel pair set to `taps` (the rest zero)."""
    w = jnp.zeros_like(stencil.conv.weight).at[0, 0].set(jnp.asarray(taps))
    return eqx.tree_at(lambda s: s.conv.weight, stencil, w)


@pytest.mark.parametrize("d", [1, 2])
def test_dymixop_stencil_annihilates_constants(getkey, d):
    stencil = dp.operators.LearnedStencil(d, 3, key=getkey())
    w = jr.normal(getkey(), stencil.conv.weight.shape)
    stencil = eqx.tree_at(lambda s: s.conv.weight, stencil, w)  # any weights
    np.testing.assert_allclose(
        jnp.sum(stencil.stencil, axis=range(2, 2 + d)), 0, atol=1e-12
    )
    constant = jnp.broadcast_to(
        jnp.array([1.5, -2.0, 0.3])[(...,) + (None,) * d], (3,) + (8,) * d
    )
    np.testing.assert_allclose(stencil(constant, 0.01), 0.0, atol=1e-10)
    assert float(jnp.abs(stencil(jr.normal(getkey(), (3,) + (8,) * d), 0.01)).max()) > 1


def test_dymixop_stencil_derivative_converges_under_refinement(getkey):
    """Taps (-1/2, 0, 1/2) — already zero-sum — divided by the true h = L/N give the
    derivative on any grid, with second-order error: the same weights serve
    every resolution (the release's h = 1 gives N/L times the derivative)."""
    stencil = _fixed_stencil(
        dp.operators.LearnedStencil(1, 1, key=getkey()), [-0.5, 0.0, 0.5]
    )
    model = dp.operators.DyMixOp(1, 1, 1, domain_extent=2.0, key=getkey())
    errors = []
    for n in (32, 64, 128):
        x = jnp.arange(n, dtype=float) * 2.0 / n
        u = jnp.sin(jnp.pi * 3 * x)[None]
        h = model.grid_spacing(u)
        assert h == 2.0 / n
        exact = 3 * jnp.pi * jnp.cos(jnp.pi * 3 * x)
        errors.append(float(jnp.abs(stencil(u, h)[0] - exact).max() / (3 * jnp.pi)))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    leading = (3 * np.pi * 2.0 / 32) ** 2 / 6  # central difference: (kh)²/6
    assert abs(errors[0] / leading - 1) < 0.05, (errors, leading)
    assert np.all(np.abs(orders - 2) < 0.1), orders


def test_dymixop_gate_receives_tau(getkey):
    key = getkey()
    kw = dict(modes=4, width=8, num_layers=3, key=key)
    slow = dp.operators.DyMixOp(1, 1, 1, tau=0.01, **kw)
    fast = dp.operators.DyMixOp(1, 1, 1, tau=1.0, **kw)
    np.testing.assert_allclose(slow.gates(), jax.nn.sigmoid(8 * 0.01))
    np.testing.assert_allclose(fast.gates(), jax.nn.sigmoid(8.0))
    u = _smooth(32)
    slow_u, fast_u = _call(slow, u), _call(fast, u)
    assert float(jnp.abs(slow_u - fast_u).max()) > 1e-6 * float(jnp.abs(fast_u).max())
    # one layer has no gated update: τ cannot matter there
    one = dict(kw, num_layers=1)
    np.testing.assert_allclose(
        _call(dp.operators.DyMixOp(1, 1, 1, tau=0.01, **one), u),
        _call(dp.operators.DyMixOp(1, 1, 1, tau=1.0, **one), u),
    )


def test_structure_change_coefficient():
    u = jnp.stack([_smooth(16), _smooth(16), -_smooth(16)])  # cos = 1, then -1
    tau = dp.operators.structure_change_coefficient(u, 1)
    np.testing.assert_allclose(tau, (0 + 2) / 2)
    np.testing.assert_allclose(
        dp.operators.structure_change_coefficient(u[None], 1), tau
    )
    with pytest.raises(ValueError, match="T >= 2"):
        dp.operators.structure_change_coefficient(u[:1], 1)


# --------------------------------------------------------------------------------
# JAWS-style penalty


class _Tiny(eqx.Module):
    """A small nonlinear map with a dense, position-dependent Jacobian."""

    matrix: jax.Array

    def __call__(self, u, *, key=None):
        flat = u.reshape(-1)
        return jnp.tanh(self.matrix @ flat + 0.3 * flat**2).reshape(u.shape)


def _exact_rows(model, u):
    jac = jax.jacfwd(lambda v: model(v).reshape(-1))(u).reshape(u.shape + (u.size,))
    return jnp.sum(jac**2, axis=(0, -1))  # sum over output channels and inputs


def test_jaws_row_norms_are_exact_in_expectation(getkey):
    """Averaging over all 2^n Rademacher sign vectors is the expectation: it must
    equal the dense Jacobian's per-location row norms to round-off; a random
    sample must agree within its standard error."""
    import itertools

    u = jr.normal(getkey(), (2, 3))  # 2 channels, 3 points: 2^6 probes
    model = _Tiny(jr.normal(getkey(), (6, 6)))
    exact = _exact_rows(model, u)
    signs = jnp.asarray(list(itertools.product([-1.0, 1.0], repeat=6))).reshape(
        64, 2, 3
    )
    rows = dp.operators.jacobian_row_norms(model, u, signs)
    np.testing.assert_allclose(rows, exact, rtol=1e-12)

    probes = dp.operators.rademacher_probes(getkey(), u.shape, 4000, u.dtype)
    single = jax.vmap(lambda v: dp.operators.jacobian_row_norms(model, u, v[None]))(
        probes
    )
    mean, error = single.mean(0), single.std(0) / np.sqrt(len(probes))
    assert np.all(np.abs(mean - exact) < 5 * error + 1e-12)

    # the JAWS term is linear in the row norms, so its expectation uses the exact ones
    jaws = dp.operators.JAWS(model, 1, 2, key=getkey())
    np.testing.assert_allclose(
        jaws.weighted_penalty(u, rows), jaws.weighted_penalty(u, exact), rtol=1e-12
    )
    s = jaws.log_variance(u)
    by_hand = jnp.mean(0.5 * jnp.exp(-s) * exact + 0.5 * s) + 0.5e-3 * jnp.mean(s**2)
    np.testing.assert_allclose(jaws.weighted_penalty(u, exact), by_hand, rtol=1e-12)


def test_jaws_variance_floor_prior_and_gradient(getkey):
    model = dp.operators.Residual(_Tiny(0.3 * jr.normal(getkey(), (16, 16))))
    jaws = dp.operators.JAWS(model, 1, 1, s_min=-2.0, key=getkey())
    u = _smooth(16)
    np.testing.assert_allclose(jaws.log_variance(u), 0.0, atol=0.05)  # at s_prior
    # the floor holds for any head output
    wild = eqx.tree_at(lambda j: j.head[1].bias, jaws, jnp.full((1, 1), -50.0))
    assert float(wild.log_variance(u).min()) >= -2.0
    # calling it is calling the wrapped operator
    np.testing.assert_allclose(jaws(u), model(u))
    # the penalty's gradient (reverse over forward) against finite differences
    key = getkey()
    params, static = eqx.partition(jaws, eqx.is_inexact_array)

    def loss(p):
        return eqx.combine(p, static).penalty(u, key=key, num_probes=2)

    grads = jax.jit(jax.grad(loss))(params)
    direction = random_like(getkey(), params)
    directional = tree_vdot(grads, direction)
    np.testing.assert_allclose(
        directional, central_difference(loss, params, direction), rtol=1e-6
    )
    with pytest.raises(ValueError, match="grid"):
        field = dp.operators.JAWS(model, 1, 1, variance="field", num_points=8, key=key)
        field.log_variance(u)


def test_spectral_norm_penalty_matches_the_largest_singular_value(getkey):
    u = jr.normal(getkey(), (1, 6))
    model = _Tiny(jr.normal(getkey(), (6, 6)))
    jac = jax.jacfwd(lambda v: model(v).reshape(-1))(u).reshape(6, 6)
    sigma = float(jnp.linalg.svd(jac, compute_uv=False)[0])
    penalty, estimate = dp.operators.spectral_norm_penalty(
        model, u, key=getkey(), num_iterations=200
    )
    np.testing.assert_allclose(estimate, sigma, rtol=1e-6)
    np.testing.assert_allclose(penalty, max(sigma - 1, 0) ** 2, rtol=1e-5)
