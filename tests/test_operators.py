"""Neural operators: shapes, jit/vmap, resolution transfer, gradients, errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from helpers import central_difference, random_like

import diffphys as dp


def _smooth(n):
    x = jnp.arange(n, dtype=float) / n
    return (jnp.sin(2 * jnp.pi * x) + 0.5 * jnp.cos(2 * jnp.pi * 3 * x))[None]


@pytest.mark.parametrize("d", [1, 2])
def test_fno_shapes_jit_and_vmap(getkey, d):
    fno = dp.operators.FNO(d, 2, 3, modes=4, width=8, num_layers=2, key=getkey())
    u = jr.normal(getkey(), (5, 2) + (16,) * d)
    out = jax.vmap(fno)(u)
    assert out.shape == (5, 3) + (16,) * d
    jitted = eqx.filter_jit(lambda model, x: jax.vmap(model)(x))
    np.testing.assert_allclose(jitted(fno, u), out, rtol=1e-12)
    assert isinstance(fno, dp.operators.AbstractOperator)
    # usable wherever a stepper is
    square = dp.operators.FNO(d, 2, 2, modes=4, width=8, num_layers=1, key=getkey())
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
    points for a smooth input, to within the aliasing of the GELU's harmonics."""
    fno = dp.operators.FNO(1, 1, 1, modes=8, width=16, key=getkey())
    a, b, c = fno(_smooth(64)), fno(_smooth(128)), fno(_smooth(256))
    scale = float(jnp.abs(c).max())
    coarse = float(jnp.abs(a - c[:, ::4]).max()) / scale
    fine = float(jnp.abs(b - c[:, ::2]).max()) / scale
    assert coarse < 1e-3 and fine < coarse


def test_fno_gradients_match_finite_differences(getkey):
    fno = dp.operators.FNO(1, 1, 1, modes=4, width=8, num_layers=2, key=getkey())
    u = _smooth(16)
    params, static = eqx.partition(fno, eqx.is_inexact_array)

    def loss(p):
        return jnp.sum(eqx.combine(p, static)(u) ** 2)

    grads = jax.grad(loss)(params)
    direction = random_like(getkey(), params)
    directional = sum(
        jnp.sum(g * v).real  # JAX: grad of a real loss w.r.t. z is ∂x − i∂y
        for g, v in zip(jax.tree.leaves(grads), jax.tree.leaves(direction), strict=True)
    )
    np.testing.assert_allclose(
        directional, central_difference(loss, params, direction), rtol=1e-6
    )


def test_fno_bad_input(getkey):
    fno = dp.operators.FNO(1, 1, 1, modes=8, width=8, key=getkey())
    with pytest.raises(ValueError, match="at least 16 points"):
        fno(_smooth(8))
    with pytest.raises(ValueError, match="1 spatial axes"):
        fno(jnp.ones((1, 16, 16)))
    with pytest.raises(ValueError, match="num_spatial_dims"):
        dp.operators.FNO(4, 1, 1, key=getkey())
