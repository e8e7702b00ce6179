"""Diffusion–sorption (manufactured solutions with measured orders, the mass balance
against the boundary fluxes, gradients to the sorption constants, the guard at u <= 0)
and steady Darcy flow (measured order, the adjoint gradient with respect to the
coefficient, FNO's coefficient field, bad input). The cross-cutting stepper
properties of diffusion–sorption are in test_steppers.py."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import central_difference, relative_error

import diffphys as dp


S = dp.solvers
DS = S.diffusion_sorption


@eqx.filter_jit
def _manufactured_error(num_points, dt, method, horizon):
    """Max error at `horizon` of the scheme against `exact.cubic_profile`
    (D = 0.5, PDEBench's sorption constants), and the largest mass-balance
    mismatch along the way."""
    base = S.DiffusionSorption(1, 1.0, num_points, dt, diffusivity=0.5, method=method)
    stepper = S.DiffusionSorption(
        1,
        1.0,
        num_points,
        dt,
        diffusivity=0.5,
        method=method,
        source=DS.exact.source(base),
    )
    x = stepper.coordinates
    u0 = DS.exact.cubic_profile(x, 0.0, diffusivity=0.5)[None]
    steps = round(horizon / dt)
    frames, budget = S.mass_budget(stepper, u0, steps)
    exact = DS.exact.cubic_profile(x, steps * dt, diffusivity=0.5)
    balance = jnp.max(jnp.abs(jax.vmap(stepper.mass)(frames) - budget))
    return jnp.max(jnp.abs(frames[-1, 0] - exact)), balance


def _slopes(errors, sizes):
    return np.diff(np.log(errors)) / np.diff(np.log(sizes))


def test_diffusion_sorption_is_second_order_in_space():
    # Crank–Nicolson (smooth data) at a small step: the spatial error dominates.
    runs = [_manufactured_error(n, 1e-3, "crank-nicolson", 0.1) for n in (16, 32, 64)]
    slopes = _slopes([float(e) for e, _ in runs], [1 / 16, 1 / 32, 1 / 64])
    assert np.all(np.abs(slopes - 2) < 0.3), slopes
    # The source and both ends enter the budget: mass balances to Newton's tolerance.
    assert max(float(b) for _, b in runs) < 1e-10


@pytest.mark.parametrize("method, order", [("backward-euler", 1), ("tr-bdf2", 2)])
def test_diffusion_sorption_order_in_time(method, order):
    dts = [0.1, 0.05, 0.025]
    errors = [float(_manufactured_error(1024, dt, method, 0.5)[0]) for dt in dts]
    slopes = _slopes(errors, dts)
    assert np.all(np.abs(slopes - order) < 0.3), slopes


def test_pdebench_setting_balances_mass_and_stays_positive():
    # PDEBench's constants and data (constant u0 in (0, 0.2)), coarse: the total
    # mass changes by exactly what entered at the inlet and left at the outlet.
    stepper = S.DiffusionSorption(1, 1.0, 64, 5.0)
    u0 = jnp.full((1, 64), 0.1)
    frames, budget = S.mass_budget(stepper, u0, 40)
    mass = jax.vmap(stepper.mass)(frames)
    assert float(jnp.max(jnp.abs(mass - budget))) < 1e-10 * float(mass[-1])
    assert float(jnp.min(frames)) > 0
    # The contaminant enters: the mass grows and the inlet cell fills towards 1.
    assert float(mass[-1]) > 2 * float(mass[0])
    assert 0.9 < float(frames[-1, 0, 0]) < 1
    # The outlet keeps u = -D u_x: its value is a fraction 2D/(h + 2D) of its cell.
    h, D = 1 / 64, 5e-4
    outflow = stepper.fluxes(frames[-1])[-1]
    assert float(outflow) == pytest.approx(
        2 * D / (h + 2 * D) * float(frames[-1, 0, -1])
    )


def test_gradients_to_the_sorption_constants_match_finite_differences():
    u0 = 0.1 + 0.05 * jnp.cos(jnp.linspace(0, 3, 16))[None]

    def loss(params):
        # The default TR-BDF2 (test_steppers.py differentiates backward Euler).
        stepper = S.DiffusionSorption(1, 1.0, 16, 2.0, **params)

        frames = S.rollout(stepper, u0, 3)
        return jnp.sum(frames[-1] ** 2 * jnp.linspace(1, 2, 16)[None])

    params = {
        "diffusivity": jnp.array(1e-3),
        "porosity": jnp.array(0.29),
        "freundlich_k": jnp.array(3.5e-4),
        "freundlich_n": jnp.array(0.874),
        "inlet": jnp.array(1.0),
    }
    grads = eqx.filter_jit(jax.grad(loss))(params)
    for name, value in params.items():
        step = {k: jnp.zeros(()) for k in params} | {name: jnp.array(1.0)}
        fd = central_difference(loss, params, step, eps=1e-6 * float(value))
        assert relative_error(grads[name], fd) < 1e-5, name


def test_diffusion_sorption_refuses_non_positive_concentrations():
    stepper = S.DiffusionSorption(1, 1.0, 16, 1.0)
    bad = jnp.full((1, 16), 0.1).at[0, 3].set(0.0)
    with pytest.raises(Exception, match="must be > 0 everywhere"):
        stepper(bad)
    with pytest.raises(Exception, match="must be > 0 everywhere"):
        stepper.retardation(jnp.array([0.5, -0.1]))
    assert float(stepper.retardation(jnp.array(1.0))) == pytest.approx(
        1 + 0.71 / 0.29 * 2880 * 3.5e-4 * 0.874
    )
    with pytest.raises(ValueError, match="`porosity` must be in"):
        S.DiffusionSorption(1, 1.0, 16, 1.0, porosity=1.0)
    with pytest.raises(ValueError, match="`diffusivity` must be > 0"):
        S.DiffusionSorption(1, 1.0, 16, 1.0, diffusivity=0.0)
    with pytest.raises(ValueError, match="`method` must be one of"):
        S.DiffusionSorption(1, 1.0, 16, 1.0, method="rk45")
    with pytest.raises(ValueError, match="1D only"):
        S.DiffusionSorption(2, 1.0, 16, 1.0)
    with pytest.raises(ValueError, match="dt > 0"):
        S.DiffusionSorption(1, 1.0, 16, -1.0)


# ------------------------------------------------------------------------- Darcy
def test_darcy_is_second_order_on_a_manufactured_solution():
    E = S.darcy.exact
    errors = []
    for n in (17, 33, 65):
        sol = S.Darcy(n, source=E.source(n)).solve(E.coefficient(n))
        errors.append(float(jnp.max(jnp.abs(sol.value - E.solution(n)))))
        assert float(jnp.max(jnp.abs(sol.value[0, [0, -1]]))) == 0.0  # u = 0 there
    slopes = _slopes(errors, [1 / 16, 1 / 32, 1 / 64])
    assert np.all(np.abs(slopes - 2) < 0.3), slopes


def test_darcy_gradient_to_the_coefficient_is_one_adjoint_solve(getkey):
    coefficient = dp.datasets.ThresholdedGaussianField()(17, key=getkey())
    darcy = S.Darcy(17, source=2.0)
    weights = jnp.cos(jnp.arange(17.0))[None, :, None]

    def loss(a, f):
        return jnp.sum(eqx.tree_at(lambda d: d.source, darcy, f)(a) ** 2 * weights)

    grad_a, grad_f = eqx.filter_jit(jax.grad(loss, argnums=(0, 1)))(coefficient, 2.0)
    direction = jax.random.normal(getkey(), coefficient.shape)
    fd = central_difference(lambda a: loss(a, 2.0), coefficient, direction)
    assert relative_error(jnp.vdot(grad_a, direction), fd) < 1e-6
    fd_f = central_difference(lambda f: loss(coefficient, f), 2.0, 1.0)
    assert relative_error(grad_f, fd_f) < 1e-6
    # The boundary nodes' coefficient is not used, so no gradient reaches it.
    assert float(jnp.max(jnp.abs(grad_a[0, 0]))) == 0.0


def test_fno_coefficient_field_is_two_valued_and_blobby(getkey):
    field = dp.datasets.ThresholdedGaussianField()
    a = field(65, key=getkey())
    assert a.shape == (1, 65, 65)
    values, counts = np.unique(np.asarray(a), return_counts=True)
    assert list(values) == [3.0, 12.0] and counts.min() > 0.1 * a.size
    # Correlated over a scale of about 1/τ: neighbours mostly agree.
    assert float(jnp.mean(a[0, 1:] == a[0, :-1])) > 0.9
    assert not jnp.array_equal(a, field(65, key=getkey()))


def test_darcy_bad_input_gets_errors_that_say_what_to_change():
    darcy = S.Darcy(9)
    with pytest.raises(Exception, match="must be > 0 everywhere"):
        darcy(jnp.ones((1, 9, 9)).at[0, 4, 4].set(-1.0))
    with pytest.raises(ValueError, match=r"must have shape \(1, 9, 9\)"):
        darcy(jnp.ones((9, 9)))
    with pytest.raises(ValueError, match="`source` must be a scalar or a field"):
        S.Darcy(9, source=jnp.ones((9, 9)))
    with pytest.raises(ValueError, match="`num_points` must be >= 4"):
        S.Darcy(3)
