"""Kuramoto–Sivashinsky and 2D Navier–Stokes (vorticity) on the spectral engine:
linear growth rates, exact decays, invariants, measured orders in dt, and bad input.
The cross-cutting properties (gradients, jit, vmap, float32) are in test_steppers.py
through `steppers.STEPPERS`."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffphys as dp


S = dp.solvers
KS = S.kuramoto_sivashinsky
NS = S.navier_stokes


def _rollout(stepper, u0, num_steps):
    return S.rollout(stepper, u0, num_steps)


def _measured_order(make, u0, horizon, dts, reference_dt):
    """Slopes of log(max error at `horizon`) against log(dt), the error taken
    against the same scheme at `reference_dt`."""
    reference = _rollout(make(reference_dt), u0, round(horizon / reference_dt))[-1]
    errors = [
        float(
            jnp.max(
                jnp.abs(_rollout(make(dt), u0, round(horizon / dt))[-1] - reference)
            )
        )
        for dt in dts
    ]
    return np.diff(np.log(errors)) / np.diff(np.log(dts))


def _mode_amplitude(u, index):
    """|û| of one rfft mode of a `(1, *N)` field."""
    return jnp.abs(jnp.fft.rfftn(u[0])[index])


@pytest.mark.parametrize(
    "d, length, mode",
    [(1, 22.0, 1), (1, 22.0, 3), (1, 22.0, 5), (2, 20.0, (1, 1))],
    ids=["1d-mode1", "1d-mode3", "1d-stable-mode5", "2d-mode11"],
)
def test_ks_mode_grows_at_the_linear_rate(d, length, mode):
    # From an amplitude of 1e-8 the quadratic term is 1e-8 of the linear one: the
    # measured rate must be λ(k) = k² − k⁴ to that accuracy.
    n = 32 if d == 1 else 16
    modes = (mode,) if d == 1 else mode
    x = jnp.arange(n, dtype=float) * length / n
    grid = jnp.meshgrid(*([x] * d), indexing="ij")
    k = 2 * np.pi * np.asarray(modes) / length
    u0 = 1e-8 * jnp.cos(sum(ki * xi for ki, xi in zip(k, grid, strict=True)))[None]
    stepper = S.KuramotoSivashinsky(d, length, n, 0.1, order=4)
    frames = _rollout(stepper, u0, 20)
    index = tuple(int(m) for m in modes)
    measured = (
        np.log(_mode_amplitude(frames[-1], index) / _mode_amplitude(u0, index)) / 2.0
    )
    expected = float(KS.exact.growth_rate(np.linalg.norm(k)))
    assert abs(measured - expected) < 1e-6 * abs(expected)
    assert (expected > 0) == (mode != 5)


def test_ks_unstable_modes_of_the_domain_length():
    # The domain length is the bifurcation parameter: 2π m / L < 1 grow.
    assert [KS.exact.unstable_modes(L) for L in (6.0, 22.0, 60.0)] == [0, 3, 9]


@pytest.mark.parametrize("d", [1, 2], ids=["1d-conservative", "2d-combustion"])
def test_ks_keeps_the_mean_through_chaos(d, getkey):
    n, length = (64, 60.0) if d == 1 else (32, 30.0)
    ic = dp.datasets.RandomTruncatedFourier(d, cutoff=3)
    u0 = ic(n, key=getkey()) + 0.3
    frames = _rollout(S.KuramotoSivashinsky(d, length, n, 0.1), u0, 600)
    means = jnp.mean(frames, axis=tuple(range(1, frames.ndim)))
    assert float(jnp.max(jnp.abs(means - means[0]))) < 1e-12
    # Chaotic, not decayed: the state has grown from max|u0| ~ 1.3.
    assert float(jnp.max(jnp.abs(frames[-1] - means[-1]))) > 1.5


@pytest.mark.parametrize("d", [1, 2], ids=["1d", "2d"])
def test_ks_is_second_order_in_dt_with_etdrk2(d, getkey):
    n, length = (32, 22.0) if d == 1 else (16, 12.0)
    u0 = dp.datasets.RandomTruncatedFourier(d, cutoff=2)(n, key=getkey())
    slopes = _measured_order(
        lambda dt: S.KuramotoSivashinsky(d, length, n, dt, order=2),
        u0,
        2.0,
        [0.2, 0.1, 0.05],
        0.2 / 64,
    )
    assert np.all(np.abs(slopes - 2) < 0.3), slopes


def test_ks_bad_input_gets_errors_that_say_what_to_change():
    with pytest.raises(ValueError, match="conservative form is 1D only"):
        S.KuramotoSivashinsky(2, 20.0, 16, 0.1, form="conservative")
    with pytest.raises(ValueError, match="`form` must be"):
        S.KuramotoSivashinsky(1, 20.0, 16, 0.1, form="fluid")
    with pytest.raises(ValueError, match="`hyper_diffusion` must be > 0"):
        S.KuramotoSivashinsky(1, 20.0, 16, 0.1, hyper_diffusion=0.0)
    with pytest.raises(ValueError, match="`anti_diffusion` must be >= 0"):
        S.KuramotoSivashinsky(1, 20.0, 16, 0.1, anti_diffusion=-1.0)
    with pytest.raises(ValueError, match="largest admissible dt is 0.5"):
        S.KuramotoSivashinsky(1, 20.0, 16, 0.6, max_speed=5.0)
    with pytest.raises(ValueError, match="dt > 0"):
        S.KuramotoSivashinsky(1, 20.0, 16, 0.0)
    with pytest.raises(ValueError, match="domain_extent > 0"):
        S.KuramotoSivashinsky(1, -1.0, 16, 0.1)
    with pytest.raises(ValueError, match="must be 1 or 2"):
        S.KuramotoSivashinsky(3, 20.0, 16, 0.1)
    stepper = S.KuramotoSivashinsky(1, 20.0, 16, 0.1)
    with pytest.raises(ValueError, match=r"must have shape \(1, 16\)"):
        stepper(jnp.zeros((16,)))


# ------------------------------------------------------------------ Navier–Stokes
L2 = 2 * np.pi


def test_taylor_green_vortex_decays_exactly():
    kwargs = dict(viscosity=0.05, drag=0.1, wavenumber=2)
    w0 = NS.exact.taylor_green(32, L2, 0.0, **kwargs)
    stepper = S.NavierStokesVorticity(2, L2, 32, 0.05, viscosity=0.05, drag=0.1)
    frames = _rollout(stepper, w0, 40)
    exact = NS.exact.taylor_green(32, L2, 2.0, **kwargs)
    assert float(jnp.max(jnp.abs(frames[-1] - exact))) < 1e-12 * float(
        jnp.max(jnp.abs(exact))
    )
    # It decayed by e^{-(2νk² + α) t} = e^{-1}: not trivially the initial state.
    assert float(jnp.max(jnp.abs(exact))) < 0.4 * float(jnp.max(jnp.abs(w0)))


def test_kolmogorov_flow_spins_up_to_the_laminar_state():
    kwargs = dict(viscosity=0.05, drag=0.1, wavenumber=4, amplitude=0.5)
    forcing = NS.kolmogorov_forcing(L2, 32, wavenumber=4, amplitude=0.5)
    stepper = S.NavierStokesVorticity(
        2, L2, 32, 0.05, viscosity=0.05, drag=0.1, forcing=forcing
    )
    frames = _rollout(stepper, jnp.zeros((1, 32, 32)), 40)
    exact = NS.exact.kolmogorov_laminar(32, L2, 2.0, **kwargs)
    assert float(jnp.max(jnp.abs(frames[-1] - exact))) < 1e-12 * float(
        jnp.max(jnp.abs(exact))
    )


def test_vorticity_mean_is_kept_and_energy_and_enstrophy_decay(getkey):
    ic = dp.datasets.RandomTruncatedFourier(2, cutoff=4)
    w0 = 5 * ic(32, key=getkey()) + 0.7
    stepper = S.NavierStokesVorticity(2, L2, 32, 0.01, viscosity=1e-3, max_speed=3.0)
    frames = _rollout(stepper, w0, 300)
    means = jnp.mean(frames, axis=(1, 2, 3))
    assert float(jnp.max(jnp.abs(means - means[0]))) < 1e-13
    energy = jax.vmap(stepper.energy)(frames)
    enstrophy = jax.vmap(stepper.enstrophy)(frames)
    assert bool(jnp.all(jnp.diff(energy) <= 0)) and bool(
        jnp.all(jnp.diff(enstrophy) <= 0)
    )
    assert float(enstrophy[-1]) < float(enstrophy[0])
    # The flow was advected, not only damped: far from the viscous decay alone.
    grid = stepper.grid
    decay = jnp.exp(grid.laplacian() * 1e-3 * 3.0).astype(complex)
    stokes = grid.inverse(grid.forward(w0) * decay)
    assert float(jnp.max(jnp.abs(frames[-1] - stokes))) > 0.3 * float(
        jnp.max(jnp.abs(frames[-1] - means[-1]))
    )
    # The velocity is divergence-free and gives back the vorticity.
    u = stepper.velocity(frames[-1])
    v = grid.forward(u)
    div = grid.inverse(grid.derivative(v[:1], 0) + grid.derivative(v[1:], 1))
    curl = grid.inverse(grid.derivative(v[1:], 0) - grid.derivative(v[:1], 1))
    assert float(jnp.max(jnp.abs(div))) < 1e-12
    assert float(jnp.max(jnp.abs(curl - (frames[-1] - means[-1])))) < 1e-10


def test_navier_stokes_is_second_order_in_dt_with_etdrk2(getkey):
    w0 = 3 * dp.datasets.RandomTruncatedFourier(2, cutoff=3)(16, key=getkey())
    slopes = _measured_order(
        lambda dt: S.NavierStokesVorticity(
            2, L2, 16, dt, viscosity=0.05, order=2, max_speed=2.0
        ),
        w0,
        1.0,
        [0.1, 0.05, 0.025],
        0.1 / 64,
    )
    assert np.all(np.abs(slopes - 2) < 0.3), slopes


def test_navier_stokes_bad_input_gets_errors_that_say_what_to_change():
    with pytest.raises(ValueError, match="must be 2"):
        S.NavierStokesVorticity(1, L2, 16, 0.1)
    with pytest.raises(ValueError, match="`viscosity` must be > 0"):
        S.NavierStokesVorticity(2, L2, 16, 0.1, viscosity=0.0)
    with pytest.raises(ValueError, match="`drag` must be >= 0"):
        S.NavierStokesVorticity(2, L2, 16, 0.1, drag=-0.1)
    with pytest.raises(ValueError, match="largest admissible dt"):
        S.NavierStokesVorticity(2, L2, 16, 1.0, max_speed=2.0)
    with pytest.raises(ValueError, match=r"must have shape \(1, 16, 16\)"):
        S.NavierStokesVorticity(2, L2, 16, 0.1, forcing=jnp.zeros((16, 16)))
    stepper = S.NavierStokesVorticity(2, L2, 16, 0.1)
    with pytest.raises(ValueError, match=r"must have shape \(1, 16, 16\)"):
        stepper(jnp.zeros((2, 16, 16)))
    # A traced negative viscosity (a gradient step gone wrong) fails at run time.
    with pytest.raises(Exception, match="`viscosity` must be > 0"):
        eqx.filter_jit(
            lambda nu: S.NavierStokesVorticity(2, L2, 16, 0.1, viscosity=nu)(
                jnp.zeros((1, 16, 16))
            )
        )(-1.0)
