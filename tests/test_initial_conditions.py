"""Initial-condition generators: shapes, determinism, and each generator's defining
property (spectral support, spectrum slope, PDEBench wavenumbers, discontinuities)."""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import diffphys as dp


D = dp.datasets
GENERATORS = [
    ("fourier-1d", D.RandomTruncatedFourier(1), 64),
    ("fourier-2d", D.RandomTruncatedFourier(2, cutoff=3), 16),
    ("grf-1d", D.GaussianRandomField(1), 64),
    ("grf-2d", D.GaussianRandomField(2, powerlaw_exponent=4.0), 16),
    ("sines", D.SineSum(), 64),
    ("pieces", D.PiecewiseConstant(), 64),
    (
        "callable",
        D.FromCallable(lambda x, key: jnp.sin(2 * jnp.pi * x[0]) * jr.normal(key)),
        64,
    ),
]


@pytest.mark.parametrize("name,ic,n", GENERATORS, ids=[g[0] for g in GENERATORS])
def test_shape_determinism_and_vmap(name, ic, n):
    key = jr.key(3)
    u = ic(n, key=key)
    assert u.shape == (1,) + (n,) * ic.num_spatial_dims
    assert jnp.all(jnp.isfinite(u))
    assert jnp.array_equal(u, ic(n, key=key))
    assert not jnp.array_equal(u, ic(n, key=jr.key(4)))
    batch = jax.jit(jax.vmap(lambda k: ic(n, key=k)))(jr.split(key, 3))
    assert batch.shape == (3,) + u.shape
    assert jnp.allclose(batch[1], ic(n, key=jr.split(key, 3)[1]))


@pytest.mark.parametrize("dims", [1, 2])
def test_truncated_fourier_support_mean_and_scale(dims):
    n, cutoff = 32, 4
    u = D.RandomTruncatedFourier(dims, cutoff=cutoff)(n, key=jr.key(0))[0]
    spectrum = jnp.abs(jnp.fft.fftn(u))
    index = jnp.abs(jnp.fft.fftfreq(n, 1 / n))
    outside = jnp.zeros(u.shape, bool)
    for axis in range(dims):
        shape = [-1 if a == axis else 1 for a in range(dims)]
        outside = outside | (index.reshape(shape) > cutoff)
    assert jnp.max(jnp.where(outside, spectrum, 0.0)) < 1e-10 * jnp.max(spectrum)
    assert jnp.max(jnp.where(outside, 0.0, spectrum)) > 0
    assert abs(float(jnp.mean(u))) < 1e-12
    assert jnp.isclose(jnp.max(jnp.abs(u)), 1.0)


def test_gaussian_random_field_has_the_requested_spectrum():
    # Average |û_k|² over many draws and fit the power law: slope -α.
    n, alpha = 256, 3.0
    ic = D.GaussianRandomField(1, powerlaw_exponent=alpha, max_one=False)
    draws = jax.vmap(lambda k: ic(n, key=k))(jr.split(jr.key(1), 400))[:, 0]
    power = jnp.mean(jnp.abs(jnp.fft.rfft(draws, axis=-1)) ** 2, axis=0)
    k = np.arange(1, 64)
    slope = np.polyfit(np.log(k), np.log(np.asarray(power[1:64])), 1)[0]
    assert abs(slope + alpha) < 0.15, slope
    assert float(power[0]) < 1e-20  # zero mean


def test_sine_sum_follows_pdebench():
    n = 128
    ic = D.SineSum(abs_probability=0.0, window_probability=0.0)
    draws = jax.vmap(lambda k: ic(n, key=k))(jr.split(jr.key(2), 200))[:, 0]
    power = jnp.mean(jnp.abs(jnp.fft.rfft(draws, axis=-1)) ** 2, axis=0)
    assert jnp.all(power[1:5] > 0) and float(jnp.sum(power[5:])) < 1e-20 * float(
        jnp.sum(power)
    )
    assert float(jnp.max(jnp.abs(draws))) <= 2.0
    # With windows always on, the field vanishes near both ends of the domain.
    windowed = D.SineSum(window_probability=1.0)
    w = jax.vmap(lambda k: windowed(n, key=k))(jr.split(jr.key(3), 50))[:, 0]
    assert float(jnp.max(jnp.abs(w[:, : n // 20]))) < 1e-3
    # With abs always on, up to the random sign the field has one sign.
    absolute = jax.vmap(lambda k: D.SineSum(abs_probability=1.0)(n, key=k))(
        jr.split(jr.key(4), 50)
    )[:, 0]
    assert jnp.all((jnp.min(absolute, axis=1) >= 0) | (jnp.max(absolute, axis=1) <= 0))


def test_piecewise_constant_pieces_and_range():
    ic = D.PiecewiseConstant(num_pieces=5, low=-2.0, high=3.0)
    u = ic(256, key=jr.key(5))[0]
    jumps = int(jnp.sum(jnp.diff(u) != 0))
    assert 1 <= jumps <= 4
    assert float(u.min()) >= -2.0 and float(u.max()) <= 3.0


def test_callable_may_return_channels():
    ic = D.FromCallable(lambda x, key: jnp.stack([x[0], -x[1]]), num_spatial_dims=2)
    u = ic(8, key=jr.key(0))
    assert u.shape == (2, 8, 8) and float(u[0, 7, 0]) == 7 / 8


BAD = {
    "dims": (lambda: D.RandomTruncatedFourier(4), "num_spatial_dims"),
    "sines in 2d": (lambda: D.SineSum(num_spatial_dims=2), "num_spatial_dims"),
    "cutoff too high": (
        lambda: D.RandomTruncatedFourier(1, cutoff=20)(16, key=jr.key(0)),
        "cutoff 20 needs",
    ),
    "few points": (lambda: D.GaussianRandomField(1)(2, key=jr.key(0)), "num_points"),
    "empty range": (lambda: D.PiecewiseConstant(low=1.0, high=1.0), "low < high"),
    "callable shape": (
        lambda: D.FromCallable(lambda x, key: jnp.ones(3))(8, key=jr.key(0)),
        "fn returned shape",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_names_the_fix(name):
    call, message = BAD[name]
    with pytest.raises(ValueError, match=message):
        call()
