"""Burgers steppers against Cole–Hopf and Riemann exact solutions, with measured
orders of convergence, invariants (mass, energy, maximum principle), gradients against
finite differences, jit/vmap, and the errors of bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import diffphys as dp
from diffphys.solvers.burgers import exact


L = 2 * np.pi
NU = 0.1


def _cole_hopf(n, t, nu=NU, a=1.0, b=0.8):
    x = jnp.arange(n, dtype=float) * L / n
    return exact.cole_hopf_single_mode(x, t, viscosity=nu, a=a, b=b, domain_extent=L)


def _slope(hs, errors):
    return np.polyfit(np.log(hs), np.log(errors), 1)[0]


def _spectral_error(order, dt, n=256, nu=0.05, b=0.99, t_end=1.0):
    stepper = dp.solvers.BurgersSpectral(
        1, L, n, dt, viscosity=nu, order=order, max_speed=0.7
    )
    u0 = _cole_hopf(n, 0.0, nu, b=b)[None]
    u = dp.solvers.rollout(stepper, u0, int(round(t_end / dt)))[-1, 0]
    exact_u = _cole_hopf(n, t_end, nu, b=b)
    return float(jnp.linalg.norm(u - exact_u) / jnp.linalg.norm(exact_u))


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_spectral_etdrk_order_in_time(order):
    dts = [0.05, 0.025, 0.0125]
    slope = _slope(dts, [_spectral_error(order, dt) for dt in dts])
    assert abs(slope - order) < 0.3, slope


def test_spectral_etdrk4_accuracy():
    # Front steepened by b = 0.99: max|u0| = 0.70 at ν = 0.05.
    assert _spectral_error(4, 0.01) <= 1e-9


def _vector_burgers_2d_error(n, dt, nu=0.1, t_end=0.5):
    # Potential flow u = -2ν ∇ ln φ with φ a heat solution solves vector Burgers.
    x = jnp.arange(n, dtype=float) * L / n
    xx, yy = jnp.meshgrid(x, x, indexing="ij")

    def velocity(t):
        decay = jnp.exp(-nu * t)
        phi = 2.0 + 0.6 * decay * jnp.cos(xx) + 0.5 * decay * jnp.cos(yy + 0.3)
        grad = jnp.stack([-0.6 * decay * jnp.sin(xx), -0.5 * decay * jnp.sin(yy + 0.3)])
        return -2 * nu * grad / phi[None]

    stepper = dp.solvers.BurgersSpectral(2, L, n, dt, viscosity=nu, order=4)
    u = dp.solvers.rollout(stepper, velocity(0.0), int(round(t_end / dt)))[-1]
    return float(jnp.max(jnp.abs(u - velocity(t_end))))


def test_spectral_vector_burgers_2d_against_cole_hopf():
    # Spectral (exponential) convergence in N at small dt ...
    errors = [_vector_burgers_2d_error(n, 0.01) for n in (16, 24, 32)]
    assert errors[0] > 25 * errors[1] > 625 * errors[2]
    # ... and fourth order in dt where the spatial error is negligible (N = 48).
    dts = [0.25, 0.125, 0.0625]
    slope = _slope(dts, [_vector_burgers_2d_error(48, dt) for dt in dts])
    assert abs(slope - 4) < 0.3, slope


def test_spectral_invariants(getkey):
    x = jnp.arange(128, dtype=float) * L / 128
    phase = jax.random.uniform(getkey())
    u0 = (0.5 + jnp.sin(3 * x) + 0.3 * jnp.cos(x + phase))[None]
    stepper = dp.solvers.BurgersSpectral(1, L, 128, 0.01, viscosity=NU, max_speed=1.5)
    traj = dp.solvers.rollout(stepper, u0, 200)[:, 0]
    mass = jnp.sum(traj, axis=1) * L / 128
    energy = 0.5 * jnp.sum(traj**2, axis=1) * L / 128
    assert jnp.max(jnp.abs(mass - mass[0])) < 1e-12
    assert jnp.all(jnp.diff(energy) <= 1e-12)
    assert jnp.max(jnp.abs(traj)) <= jnp.max(jnp.abs(traj[0])) + 1e-8


def _cell_averages(n, t, nu=NU):
    nodes, weights = np.polynomial.legendre.leggauss(4)
    x = jnp.arange(n, dtype=float) * L / n
    points = x[:, None] + 0.5 * (L / n) * nodes[None]
    values = exact.cole_hopf_single_mode(
        points, t, viscosity=nu, a=1.0, b=0.8, domain_extent=L
    )
    return values @ jnp.asarray(weights) / 2


def _fv_run(n, t_end=1.0, nu=NU):
    rate = 1.5 / (L / n) + 2 * nu / (L / n) ** 2
    steps = int(np.ceil(t_end * rate / 0.4))
    stepper = dp.solvers.BurgersFV(1, L, n, t_end / steps, viscosity=nu, max_speed=1.5)
    return dp.solvers.rollout(stepper, _cell_averages(n, 0.0, nu)[None], steps)


def test_fv_second_order_on_smooth_solution():
    ns = [32, 64, 128, 256]
    errors = [
        float(jnp.mean(jnp.abs(_fv_run(n)[-1, 0] - _cell_averages(n, 1.0)))) for n in ns
    ]
    assert -_slope(ns, errors) >= 1.8, errors


def test_fv_conserves_mass_and_keeps_the_maximum_principle():
    traj = _fv_run(64)[:, 0]
    mass = jnp.sum(traj, axis=1) * L / 64
    assert jnp.max(jnp.abs(mass - mass[0])) < 1e-12
    assert jnp.max(traj) <= jnp.max(traj[0]) + 1e-8
    assert jnp.min(traj) >= jnp.min(traj[0]) - 1e-8


@pytest.mark.parametrize("limiter", ["mc", "minmod", "van_leer"])
def test_fv_inviscid_shock_moves_at_rankine_hugoniot_speed(limiter):
    n, length = 200, 2.0
    dx = length / n
    x = jnp.arange(n, dtype=float) * dx
    u0 = jnp.where((x >= 0.5) & (x < 1.0), 1.0, 0.0)[None]
    dt, steps = 0.4 * dx, 60
    stepper = dp.solvers.BurgersFV(1, length, n, dt, viscosity=0.0, limiter=limiter)
    u = dp.solvers.rollout(stepper, u0, steps)[-1, 0]
    t = steps * dt
    # The shock starts at x = 1 with u_left = 1, u_right = 0: speed 1/2. Locate the
    # half-height crossing on the right half of the domain.
    right = x > 1.0
    position = x[right][jnp.argmin(jnp.abs(u[right] - 0.5))]
    assert abs(float(position) - (1.0 + 0.5 * t)) <= dx
    # Behind it, the rarefaction from x = 0.5 follows the exact fan.
    fan = exact.riemann(x, t, u_left=0.0, u_right=1.0, x0=0.5)
    inside = (x > 0.5 + 0.2 * t) & (x < 0.5 + 0.8 * t)
    assert jnp.max(jnp.abs(u[inside] - fan[inside])) < 0.05


def _implicit_error(dt, n=128, t_end=1.0):
    stepper = dp.solvers.BurgersImplicit(1, L, n, dt, viscosity=NU)
    u = dp.solvers.rollout(stepper, _cole_hopf(n, 0.0)[None], int(round(t_end / dt)))
    exact_u = _cole_hopf(n, t_end)
    return float(jnp.linalg.norm(u[-1, 0] - exact_u) / jnp.linalg.norm(exact_u))


def test_implicit_crank_nicolson_is_second_order():
    dts = [0.1, 0.05, 0.025]
    slope = _slope(dts, [_implicit_error(dt) for dt in dts])
    assert abs(slope - 2) < 0.3, slope


def test_implicit_agrees_with_spectral():
    u0 = _cole_hopf(64, 0.0)[None]
    spectral = dp.solvers.BurgersSpectral(
        1, L, 64, 0.01, viscosity=NU, order=4, max_speed=1.5
    )
    implicit = dp.solvers.BurgersImplicit(1, L, 64, 0.01, viscosity=NU)
    a = dp.solvers.rollout(spectral, u0, 50)[-1]
    b = dp.solvers.rollout(implicit, u0, 50)[-1]
    # Crank–Nicolson's time error at dt = 0.01 is about 5e-7 here (its measured
    # constant, 1.2e-5 at dt = 0.05, times (0.01/0.05)^2).
    assert jnp.linalg.norm(a - b) / jnp.linalg.norm(a) < 2e-6


def test_implicit_handles_large_steps_at_high_viscosity():
    # ν dt / dx² = 1000: far beyond any explicit diffusive limit.
    n, nu = 64, 1.0
    dt = 1000 * (L / n) ** 2 / nu
    stepper = dp.solvers.BurgersImplicit(1, L, n, dt, viscosity=nu, theta=1.0)
    u = dp.solvers.rollout(stepper, _cole_hopf(n, 0.0, nu, b=0.5)[None], 3)
    assert jnp.all(jnp.isfinite(u))
    assert jnp.max(jnp.abs(u[-1])) < jnp.max(jnp.abs(u[0]))


def _manufactured(n):
    # u = e^{-t} sin x solves u_t + u u_x = ν u_xx + f with this f(x, t).
    x = jnp.arange(n, dtype=float) * L / n

    def forcing(t):
        a = jnp.exp(-t)
        return ((NU - 1) * a * jnp.sin(x) + a**2 * jnp.sin(x) * jnp.cos(x))[None]

    def solution(t):
        return (jnp.exp(-t) * jnp.sin(x))[None]

    return forcing, solution


@pytest.mark.parametrize(
    "name,order",
    [("spectral-2", 2), ("spectral-4", 4), ("implicit", 2), ("fv", 2)],
)
def test_time_dependent_forcing_keeps_the_order(name, order):
    t_end = 1.0

    def error(level):
        if name == "fv":  # refine the grid; dt at 0.4 of the stability limit
            n = 32 * 2**level
            dx = L / n
            dt = t_end / np.ceil(t_end * (1 / dx + 2 * NU / dx**2) / 0.4)
        else:
            n, dt = 32, 0.2 / 2**level
        forcing, solution = _manufactured(n)
        if name == "fv":
            stepper = dp.solvers.BurgersFV(1, L, n, dt, viscosity=NU, forcing=forcing)
        elif name == "implicit":
            stepper = dp.solvers.BurgersImplicit(
                1, L, n, dt, viscosity=NU, forcing=forcing
            )
        else:
            stepper = dp.solvers.BurgersSpectral(
                1, L, n, dt, viscosity=NU, order=order, forcing=forcing
            )
        steps = int(round(t_end / dt))
        u = dp.solvers.rollout(stepper, solution(0.0), steps, t0=0.0)[-1]
        return float(jnp.max(jnp.abs(u - solution(t_end))))

    errors = [error(level) for level in range(3)]
    slope = -_slope([1, 2, 4], errors)
    assert slope > order - 0.3, (errors, slope)


BAD = {
    "negative viscosity": (
        lambda: dp.solvers.BurgersSpectral(1, L, 32, 0.01, viscosity=-0.1),
        "viscosity",
    ),
    "zero viscosity spectral": (
        lambda: dp.solvers.BurgersSpectral(1, L, 32, 0.01, viscosity=0.0),
        "> 0",
    ),
    "unstable spectral dt": (
        lambda: dp.solvers.BurgersSpectral(1, L, 32, 1.0, viscosity=0.1),
        "largest admissible dt is 0.3927",
    ),
    "unstable fv dt": (
        lambda: dp.solvers.BurgersFV(1, L, 64, 0.05, viscosity=0.1),
        "largest stable dt is",
    ),
    "fv in 2d": (lambda: dp.solvers.BurgersFV(2, L, 32, 0.01), "1D only"),
    "order 5": (lambda: dp.solvers.BurgersSpectral(1, L, 32, 0.01, order=5), "order"),
    "theta below 1/2": (
        lambda: dp.solvers.BurgersImplicit(1, L, 32, 0.01, theta=0.3),
        "theta",
    ),
    "wrong state shape": (
        lambda: dp.solvers.BurgersSpectral(1, L, 32, 0.01)(jnp.zeros((32,))),
        r"shape \(1, 32\)",
    ),
    "state on another grid": (
        lambda: dp.solvers.BurgersFV(1, L, 32, 0.01)(jnp.zeros((1, 64))),
        r"shape \(1, 32\)",
    ),
    "2d state with one channel": (
        lambda: dp.solvers.BurgersSpectral(2, L, 16, 0.01)(jnp.zeros((1, 16, 16))),
        r"shape \(2, 16, 16\)",
    ),
    "unknown limiter": (
        lambda: dp.solvers.BurgersFV(1, L, 32, 0.01, limiter="superbee"),
        "Unknown limiter",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_names_the_fix(name):
    call, message = BAD[name]
    with pytest.raises(ValueError, match=message):
        call()


def test_checkpointed_rollout_is_the_same_gradient_in_less_memory():
    # 5 saved frames 37 solver steps apart: 3 segments of 2, 2, 1 frames, and 7 of
    # 6, 6, 5, ... steps between two frames (both remainders exercised).
    stepper = dp.solvers.BurgersSpectral(1, L, 32, 0.01, viscosity=0.05, max_speed=1.5)
    x = jnp.arange(32, dtype=float) * L / 32
    u0 = (jnp.sin(x) + 0.3 * jnp.cos(2 * x))[None]

    def loss(u, checkpoint):
        frames = dp.solvers.rollout(stepper, u, 5, save_every=37, checkpoint=checkpoint)
        return jnp.sum(frames[-1] ** 2) + jnp.sum(frames[2] ** 3), frames

    results = {}
    for checkpoint in (False, True):
        grad = jax.jit(
            jax.value_and_grad(lambda u, c=checkpoint: loss(u, c), has_aux=True)
        )
        compiled = grad.lower(u0).compile()
        (_, frames), g = compiled(u0)
        results[checkpoint] = frames, g, compiled.memory_analysis().temp_size_in_bytes
    (f0, g0, plain), (f1, g1, checkpointed) = results[False], results[True]
    np.testing.assert_array_equal(f1, f0)
    np.testing.assert_allclose(g1, g0, rtol=1e-12)
    # The temporaries of plain backprop grow with the 185 solver steps; checkpointed
    # ones with the segments (measured 8.4x at 64 points).
    assert plain > 4 * checkpointed, (plain, checkpointed)
    # Forward mode works through the checkpoints as well.
    v = jnp.cos(3 * x)[None]
    _, tangent = jax.jvp(lambda u: loss(u, True)[0], (u0,), (v,))
    np.testing.assert_allclose(tangent, jnp.vdot(g0, v), rtol=1e-12)
    with pytest.raises(ValueError, match="number of segments"):
        dp.solvers.rollout(stepper, u0, 5, checkpoint=0)


def test_rollout_reports_blow_up():
    def explode(u):
        return u * 1e200  # 1, 1e200, inf, ...

    u0 = jnp.ones((1, 8))
    with pytest.raises(eqx.EquinoxRuntimeError, match=r"saved frame 2 \(solver step 2"):
        dp.solvers.rollout(explode, u0, 5)
    with pytest.raises(eqx.EquinoxRuntimeError, match=r"frame 0 \(solver steps 1\.\.4"):
        dp.solvers.rollout(explode, u0, 2, save_every=4, include_init=False)
    traj = dp.solvers.rollout(explode, u0, 5, throw=False)
    first_bad = int(jnp.argmin(jnp.all(jnp.isfinite(traj[:, 0]), axis=1)))
    assert first_bad == 2 and traj.shape == (6, 1, 8)
    # under jit the check runs at run time, without the frame (eqx.filter_jit
    # raises it as EquinoxRuntimeError; jax.jit wraps it in its runtime error)
    with pytest.raises(eqx.EquinoxRuntimeError, match="produced NaN or inf"):
        eqx.filter_jit(lambda u: dp.solvers.rollout(explode, u, 5))(u0)
    # a NaN initial state is reported as such, before any step
    with pytest.raises(eqx.EquinoxRuntimeError, match="initial state holds NaN"):
        dp.solvers.rollout(explode, u0.at[0, 3].set(jnp.nan), 5)
    # A stepper's max_speed is a promise its Courant check relied on: a state
    # beyond it that blows up is named as the cause.
    x = jnp.arange(32, dtype=float) * L / 32
    stepper = dp.solvers.BurgersSpectral(
        1, L, 32, 1.5 * L / 32, viscosity=0.01, max_speed=1.0
    )
    message = r"max\|u\| = 30, above the max_speed = 1 promised to BurgersSpectral"
    with pytest.raises(eqx.EquinoxRuntimeError, match=message):
        dp.solvers.rollout(stepper, 30 * jnp.sin(x)[None], 20)


def test_traced_negative_viscosity_is_a_runtime_error():
    u0 = jnp.sin(jnp.arange(16.0) * L / 16)[None]

    @eqx.filter_jit
    def final(nu):
        stepper = dp.solvers.BurgersSpectral(1, L, 16, 0.01, viscosity=nu)
        return dp.solvers.rollout(stepper, u0, 2)[-1]

    assert jnp.all(jnp.isfinite(final(jnp.array(0.1))))
    with pytest.raises(eqx.EquinoxRuntimeError, match="`viscosity` must be > 0"):
        final(jnp.array(-0.1))


def test_optimisation_skips_a_trial_that_blows_up():
    # The documented pattern: throw=False, and optax skips non-finite gradients.
    u0 = jnp.where(jnp.arange(32) < 16, 1.0, 0.0)[None]
    target = dp.solvers.rollout(
        dp.solvers.BurgersFV(1, L, 32, 0.02, viscosity=0.05), u0, 40
    )

    def loss(log_nu):
        stepper = dp.solvers.BurgersFV(1, L, 32, 0.02, viscosity=jnp.exp(log_nu))
        traj = dp.solvers.rollout(stepper, u0, 40, throw=False)
        return jnp.mean((traj - target) ** 2)

    optimiser = optax.apply_if_finite(optax.sgd(1.0), max_consecutive_errors=5)
    log_nu = jnp.log(1e3)  # explicit diffusion far past its stability limit
    state = optimiser.init(log_nu)
    value, grad = jax.value_and_grad(loss)(log_nu)
    assert not jnp.isfinite(value)
    updates, state = optimiser.update(grad, state)
    assert float(optax.apply_updates(log_nu, updates)) == float(log_nu)  # skipped
    assert int(state.notfinite_count) == 1


def test_general_cole_hopf_matches_closed_form():
    n, t = 256, 1.0
    u0 = _cole_hopf(n, 0.0, 0.05, b=0.99)
    general = exact.cole_hopf(u0, t, viscosity=0.05, domain_extent=L)
    assert jnp.max(jnp.abs(general - _cole_hopf(n, t, 0.05, b=0.99))) < 1e-12
    # Non-zero mean: Galilean shift.
    shifted = exact.cole_hopf(u0 + 0.3, t, viscosity=0.05, domain_extent=L)
    stepper = dp.solvers.BurgersSpectral(1, L, n, 0.01, viscosity=0.05, order=4)
    rolled = dp.solvers.rollout(stepper, (u0 + 0.3)[None], 100)[-1, 0]
    assert jnp.max(jnp.abs(shifted - rolled)) < 1e-8


def test_rollout_save_every_keeps_every_kth_frame():
    stepper = dp.solvers.BurgersSpectral(1, 2 * jnp.pi, 64, 0.01, viscosity=0.05)
    u0 = jnp.sin(jnp.arange(64, dtype=float) * 2 * jnp.pi / 64)[None]
    every = dp.solvers.rollout(stepper, u0, 12)
    sparse = dp.solvers.rollout(stepper, u0, 4, save_every=3)
    assert sparse.shape == (5, 1, 64)
    assert jnp.array_equal(sparse, every[::3])
    timed = dp.solvers.rollout(stepper, u0, 4, save_every=3, t0=0.0)
    assert jnp.array_equal(timed, sparse)
    with pytest.raises(ValueError, match="save_every"):
        dp.solvers.rollout(stepper, u0, 4, save_every=0)
