"""The generalized porous medium solver and the hyperbolic ProbConserv solvers,
against the analytic solutions of `dp.solvers.porous_medium.exact`."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffphys as dp
from diffphys.solvers.conservation_law import exact as hyperbolic
from diffphys.solvers.porous_medium import exact


S = dp.solvers


def _order(errors, sizes):
    return -np.polyfit(np.log(sizes), np.log(errors), 1)[0]


def _crossing(x, u, level):
    """The first position where `u` falls below `level` (linear interpolation)."""
    x, u = np.asarray(x), np.asarray(u)
    i = int(np.argmax(u < level))
    return x[i - 1] + (u[i - 1] - level) / (u[i - 1] - u[i]) * (x[i] - x[i - 1])


def _run(stepper, u0, num_steps):
    return S.rollout(stepper, u0, num_steps, include_init=False, t0=0.0)[-1]


def test_heat_second_order():
    # Crank–Nicolson with dt ∝ h: second order in both, on the periodic sine.
    sizes = [16, 32, 64]

    @eqx.filter_jit
    def error(n):
        stepper = S.PorousMedium(
            1, 2 * jnp.pi, n, 0.5 / (2 * n), diffusivity=S.Constant(2.0), theta=0.5
        )
        x = stepper.coordinates
        u = _run(stepper, exact.heat(x, 0.0, k=2.0)[None], 2 * n)
        return jnp.max(jnp.abs(u[0] - exact.heat(x, 0.5, k=2.0)))

    errors = [float(error(n)) for n in sizes]
    order = _order(errors, sizes)
    print(f"heat: max errors {errors}, order {order:.2f}")
    assert 1.9 < order < 2.1


@pytest.mark.parametrize("m", [1.0, 2.5])
def test_pme_front_and_order(m):
    errors, sizes, t = [], [32, 64, 128], 0.5

    @eqx.filter_jit
    def solve(n):
        stepper = S.PorousMedium(
            1,
            1.0,
            n,
            t / n,
            diffusivity=S.PowerLaw(m),
            left=S.Dirichlet(lambda s: exact.pme_inflow(s, m=m)),
            right=S.Dirichlet(0.0),
        )
        x = stepper.coordinates
        u = _run(stepper, jnp.zeros((1, n)), n)[0]
        return x, u, jnp.mean(jnp.abs(u - exact.pme(x, t, m=m)))

    for n in sizes:
        x, u, error = solve(n)
        errors.append(float(error))
        # Where u crosses 0.2: exactly at x = t - 0.2^m / m.
        front = _crossing(x, u, 0.2)
        assert abs(front - (t - 0.2**m / m)) < 2 / n
    order = _order(errors, sizes)
    print(f"PME m={m}: L1 errors {errors}, order {order:.2f}")
    assert order > 0.8


def _cell_averages(fn, n, length=1.0, origin=0.0, sub=32):
    x = origin + (jnp.arange(n * sub, dtype=float) + 0.5) * length / (n * sub)
    return fn(x).reshape(n, sub).mean(axis=1)


def test_stefan_front_and_mass():
    # Against the exact cell averages (the solution jumps from u* to 0 inside a
    # cell, so point values at the centres carry an O(1) error in that cell).
    u_star, t, errors, sizes = 0.6, 0.05, [], [64, 128, 256]
    front_exact = float(exact.stefan_front(t, u_star=u_star))

    @eqx.filter_jit
    def solve(n):
        stepper = S.PorousMedium(
            1,
            1.0,
            n,
            t / n,
            diffusivity=S.Stefan(u_star),
            left=S.Dirichlet(1.0),
            right=S.Dirichlet(0.0),
        )
        x = stepper.coordinates
        u = _run(stepper, jnp.zeros((1, n)), n)[0]
        averages = _cell_averages(lambda y: exact.stefan(y, t, u_star=u_star), n)
        error = jnp.mean(jnp.abs(u - averages))
        return error, x[jnp.argmax(u < u_star)], stepper.mass(u[None])

    for n in sizes:
        error, melted, mass = solve(n)
        errors.append(float(error))
        front = float(melted) - 0.5 / n  # the melted cells' edge
        assert abs(front - front_exact) < 2 / n
        mass = float(mass)
        assert abs(mass - float(exact.stefan_mass(t, u_star=u_star))) < 2 / n
    order = _order(errors, sizes)
    print(f"Stefan: L1 errors {errors}, order {order:.2f}")
    assert order > 0.8


@pytest.mark.parametrize(
    "left, right",
    [
        (S.Dirichlet(lambda t: 1.0 + t), S.Neumann(-0.3)),
        (S.Neumann(lambda t: jnp.cos(5.0 * t)), S.Dirichlet(0.2)),
        (S.Periodic(), S.Periodic()),
    ],
    ids=["dirichlet-neumann", "neumann-dirichlet", "periodic"],
)
def test_mass_balance_round_off(left, right):
    # Loose Newton tolerance on purpose: the completion from the converged fluxes
    # makes the balance exact regardless.
    stepper = S.PorousMedium(
        1,
        1.0,
        24,
        0.02,
        diffusivity=S.PowerLaw(2.0),
        left=left,
        right=right,
        theta=0.5,
        rtol=1e-4,
    )
    u = 0.5 + 0.3 * jnp.sin(2 * jnp.pi * stepper.coordinates)[None]
    t, worst, step = 0.0, 0.0, eqx.filter_jit(stepper.step)
    for _ in range(5):
        u_next, inflow = step(u, t)
        change = stepper.mass(u_next) - stepper.mass(u)
        worst = max(worst, float(jnp.abs(change - jnp.sum(inflow))))
        u, t = u_next, t + stepper.dt
    print(f"mass-balance residual {worst:.2e}")
    assert worst < 1e-14


def test_mass_budget_gives_the_constraint_right_hand_side(getkey):
    # b(t) from the boundary fluxes: the frames' mass to round-off, the exact mass
    # curve to the scheme's first order (PME) or exactly (advection: the inflow
    # a·1 per unit time is resolved exactly), and a ProbConserv right-hand side.
    m, gaps = 2.0, []

    @eqx.filter_jit
    def budget(n):
        pme = S.PorousMedium(
            1,
            1.0,
            n,
            0.5 / n,
            diffusivity=S.PowerLaw(m),
            left=S.Dirichlet(lambda t: exact.pme_inflow(t, m=m)),
            right=S.Dirichlet(0.0),
        )
        frames, b = S.mass_budget(pme, jnp.zeros((1, n)), 8, save_every=n // 8)
        t = jnp.linspace(0.0, 0.5, 9)
        return (
            frames.shape,
            b.shape,
            jnp.max(jnp.abs(jax.vmap(pme.mass)(frames) - b)),
            jnp.max(jnp.abs(b - exact.pme_mass(t, m=m))),
        )

    for n in (64, 128):
        frames_shape, b_shape, balance, gap = budget(n)
        assert frames_shape == (9, 1, n) and b_shape == (9,)
        assert float(balance) < 1e-14
        gaps.append(float(gap))
    assert gaps[1] < 0.6 * gaps[0] and gaps[1] < 2 / 128, gaps

    advection = S.ConservationLaw(
        1, 1.0, 64, 0.4 / 64, flux="advection", left=S.Dirichlet(1.0), right=S.Outflow()
    )
    u0 = hyperbolic.advection(advection.coordinates, 0.0, a=1.0)[None]
    frames, b = S.mass_budget(advection, u0, 8, save_every=8)
    t = jnp.linspace(0.0, 0.4, 9)
    assert float(jnp.max(jnp.abs(b - hyperbolic.advection_mass(t, a=1.0)))) < 1e-14

    # a noisy "prediction" of the frames, corrected to the budget
    guess = frames[:, 0] + 0.05 * jax.random.normal(getkey(), frames[:, 0].shape)
    G = dp.constraints.mass_weights(advection.coordinates, rule="cells")
    variance = dp.constraints.Diagonal(jnp.full_like(guess, 0.01))
    mean, _ = dp.constraints.ProbConserv(G)(guess, variance, b)
    assert (
        float(jnp.max(jnp.abs(dp.constraints.conservation_error(mean, G, b)))) < 1e-14
    )
    with pytest.raises(ValueError, match="needs a stepper with `step"):
        S.mass_budget(S.BurgersSpectral(1, 1.0, 16, 0.01), jnp.zeros((1, 16)), 2)


def test_hyperbolic_cases():
    # Advection of the ProbConserv step and the Burgers ramp to its shock: L1
    # convergence, the exact mass curve, and the shock position.
    a = 3.0
    for case, (fn, mass, length, t) in {
        "advection": (hyperbolic.advection, hyperbolic.advection_mass, 1.0, 0.1),
        "burgers": (hyperbolic.burgers_ramp, hyperbolic.burgers_ramp_mass, 2.0, 0.5),
    }.items():
        errors, sizes = [], [100, 200]
        for n in sizes:
            dt = 0.4 * length / n / a
            stepper = S.ConservationLaw(
                1,
                length,
                n,
                dt,
                flux=case if case == "advection" else "burgers",
                velocity=a,
                left=S.Dirichlet(a if case == "burgers" else 1.0),
                right=S.Outflow(),
                max_speed=a,
            )
            x = stepper.coordinates + (1.0 - length)  # Burgers lives on [-1, 1]
            steps = round(t / dt)
            u = _run(stepper, fn(x, 0.0, a=a)[None], steps)[0]
            errors.append(float(jnp.mean(jnp.abs(u - fn(x, steps * dt, a=a)))))
            assert abs(float(stepper.mass(u[None]) - mass(steps * dt, a=a))) < 1e-6
        if case == "burgers":
            shock = _crossing(x, u, a / 2)
            assert (
                abs(shock - float(hyperbolic.burgers_ramp_shock(steps * dt, a=a)))
                < 2 / n
            )
        order = _order(errors, sizes)
        print(f"{case}: L1 errors {errors}, order {order:.2f}")
        assert order > 0.6


@jax.jit
def _gpme_loss(theta):
    u0, m, g = theta
    stepper = S.PorousMedium(
        1,
        1.0,
        12,
        0.01,
        diffusivity=S.PowerLaw(m),
        left=S.Dirichlet(g),
        right=S.Neumann(0.0),
    )
    return jnp.sum(S.rollout(stepper, u0[None], 5)[-1] ** 2)


def test_gradient_five_steps():
    from helpers import central_difference

    x = (jnp.arange(12.0) + 0.5) / 12
    theta = (0.5 + 0.4 * jnp.cos(3 * x), jnp.array(1.5), jnp.array(1.2))
    grad = jax.grad(_gpme_loss)(theta)
    for i, v in enumerate(
        [(jnp.sin(7 * x), 0.0, 0.0), (0 * x, 1.0, 0.0), (0 * x, 0.0, 1.0)]
    ):
        v = jax.tree.map(jnp.asarray, v)
        fd = central_difference(_gpme_loss, theta, v)
        ad = sum(jnp.vdot(a, b) for a, b in zip(grad, v, strict=True))
        assert jnp.abs(ad - fd) < 1e-6 * max(1.0, abs(float(fd))), i


def test_barenblatt_conserves_and_spreads():
    # The degenerate source solution on a closed box (no-flux ends): mass to
    # round-off, the front within two cells, first-order convergence (dt ∝ h).
    m, C, errors, sizes = 2.0, 1.0, [], [80, 160]

    @eqx.filter_jit
    def solve(n):
        stepper = S.PorousMedium(
            1,
            12.0,
            n,
            2.0 / n,  # from t = 1 to t = 3
            diffusivity=S.PowerLaw(m),
            left=S.Neumann(),
            right=S.Neumann(),
        )
        x = stepper.coordinates - 6.0
        u0 = exact.barenblatt(x, 1.0, m=m, C=C)[None]
        u = _run(stepper, u0, n)[0]
        error = jnp.mean(jnp.abs(u - exact.barenblatt(x, 3.0, m=m, C=C)))
        return x, u, stepper.mass(u[None]) - stepper.mass(u0), error

    front = float(exact.barenblatt_front(3.0, m=m, C=C))
    for n in sizes:
        x, u, mass_change, error = map(np.asarray, solve(n))
        assert abs(float(mass_change)) < 1e-13
        support = x[u > 1e-3 * u.max()]
        assert abs(float(support[-1]) - front) < 2 * 12 / n
        errors.append(float(error))
    order = _order(errors, sizes)
    print(f"Barenblatt: L1 errors {errors}, order {order:.2f}")
    assert order > 0.8


def test_bad_input():
    with pytest.raises(ValueError, match="`m` must be > 0"):
        S.PowerLaw(0.0)
    with pytest.raises(ValueError, match="Periodic must be on both ends"):
        S.PorousMedium(1, 1.0, 16, 0.1, left=S.Periodic(), right=S.Dirichlet(0.0))
    with pytest.raises(ValueError, match="largest stable dt"):
        S.ConservationLaw(1, 1.0, 16, 0.1, flux="advection", velocity=2.0)
    stepper = S.PorousMedium(
        1,
        1.0,
        16,
        0.1,
        diffusivity=S.PowerLaw(1.5),
        left=S.Neumann(),
        right=S.Neumann(),
    )
    with pytest.raises(ValueError, match="shape"):
        stepper(jnp.ones((1, 15)))
    with pytest.raises(Exception, match="non-integer m needs u >= 0"):
        stepper(-jnp.ones((1, 16)))


@pytest.mark.parametrize(
    "name", ["heat", "pme", "stefan", "advection", "burgers-riemann"]
)
def test_scenarios_solver_matches_exact(tmp_path, name):
    # `diffphys generate NAME --source exact|solver`: the two agree to the scheme's
    # accuracy on the default grid (mean error at the last frame).
    import h5py

    from diffphys.datasets import generate, make_config

    frames = {}
    for source in ("exact", "solver"):
        config = make_config(
            name, num_samples=2, num_steps=10, split="1,0,0", source=source
        )
        generate(config, tmp_path / source, progress=False)
        (path,) = (tmp_path / source / "data" / "train").glob("*.hdf5")
        with h5py.File(path) as f:
            frames[source] = f["t0_fields/u"][0]
    error = np.mean(np.abs(frames["exact"][-1] - frames["solver"][-1]))
    scale = np.mean(np.abs(frames["exact"][-1]))
    print(f"{name}: mean |solver - exact| / mean |exact| = {error / scale:.2e}")
    assert error < 0.05 * scale
    np.testing.assert_array_equal(frames["exact"][0], frames["solver"][0])
