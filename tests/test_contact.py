"""Rigid-body contact: the fact sheet's validation cases (§8, 1-15) with their
tolerances, sphere-sphere impacts, gradients against finite differences (smooth
regimes and the relaxed model), vmap and jit, and the errors of bad input."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import run_cli

import diffphys as dp
from diffphys.solvers.contact import _quaternion as quat


C = dp.solvers.contact
G = 9.81


@eqx.filter_jit
def _simulate(stepper, state, num_steps, controls=None):
    return C.simulate(stepper, state, num_steps, controls)


def _gap(states, radius):
    return states.position[..., 2] - radius


def _agrees(value, figure):
    """`value` rounds to the fact sheet's `figure`, to the digits it is given with."""
    mantissa, exponent = f"{figure:e}".split("e")
    digits = len(mantissa.rstrip("0").replace(".", "").lstrip("-"))
    return abs(value - figure) <= 0.5 * 10 ** (int(exponent) - digits + 1)


def _box_scene(mu=0.5, gravity=(0.0, 0.0, -G), size=0.2):
    return C.Scene([C.Box(1.0, size)], [C.Plane()], friction=mu, gravity=gravity)


def test_soc_step_is_the_largest_feasible_step():
    # §8 #1: CVXOPT's formula (τ = 1) against the largest α with λ + α Δ in the
    # cone, the root of a quadratic.
    rng = np.random.default_rng(0)
    lam = rng.normal(size=(400, 3))
    lam[:, 0] = np.linalg.norm(lam[:, 1:], axis=1) + rng.uniform(0.01, 2, 400)
    d = 3 * rng.normal(size=(400, 3))
    alpha = jax.vmap(lambda lm, dm: C.soc_step(lm[None], dm[None], 1.0))(lam, d)

    def largest(lm, dm):
        # (λ₀ + αΔ₀)² − ‖λ₁ + αΔ₁‖² = a α² + b α + c >= 0 with λ₀ + αΔ₀ >= 0.
        a = dm[0] ** 2 - dm[1:] @ dm[1:]
        b = 2 * (lm[0] * dm[0] - lm[1:] @ dm[1:])
        c = lm[0] ** 2 - lm[1:] @ lm[1:]
        roots = np.roots([a, b, c]) if abs(a) > 1e-14 else np.array([-c / b])
        roots = [r.real for r in roots if abs(r.imag) < 1e-12 and r.real > 0]
        cut = -lm[0] / dm[0] if dm[0] < 0 else np.inf
        return min([1.0, cut, *roots])

    expected = np.array([largest(lm, dm) for lm, dm in zip(lam, d, strict=True)])
    np.testing.assert_allclose(alpha, expected, atol=1e-9)
    assert 0.05 < np.mean(expected < 1) < 0.95  # both kinds of case occur


def test_ballistic_flight_is_exact():
    # §8 #2: far from the plane, x_{k+1} - 2 x_k + x_{k-1} = h² g.
    scene = C.Scene([C.Sphere(1.0, 0.1)], [C.Plane(offset=-100.0)], friction=0.5)
    # rtol 1e-12: the velocity error is then below 1e-12 / h.
    stepper = C.ContactStepper(scene, 0.05, rtol=1e-12)
    state = scene.state(position=[[0.0, 0, 1]], velocity=[[1.0, -2, 3]])
    states, status = _simulate(stepper, state, 20)
    x = states.position[:, 0]
    second = x[2:] - 2 * x[1:-1] + x[:-2]
    np.testing.assert_allclose(
        second, jnp.broadcast_to(0.05**2 * scene.gravity, second.shape), atol=1e-12
    )
    assert status.converged.all()


def _free_body(inertia, h):
    # A ball with a given inertia behaves as any body of that inertia in flight,
    # at one contact's cost.
    scene = C.Scene(
        [C.Sphere(1.0, 0.1, inertia=inertia)],
        [C.Plane(offset=-1e3)],
        friction=0.5,
        gravity=(0.0, 0.0, 0.0),
    )
    return scene, C.ContactStepper(scene, h)


def test_torque_free_body_conserves_momentum_and_energy():
    # §8 #3: J = diag(1, 2, 3), ω₀ = (0.01, 5, 0), h = 0.01, 20 s: the discrete
    # momentum R(q) p is constant, so is ½ωᵀJω, and the intermediate axis flips.
    h = 0.01
    J = jnp.diag(jnp.array([1.0, 2, 3]))
    scene, stepper = _free_body(jnp.diag(J), h)
    state = scene.state(position=[[0.0, 0, 0]], angular_velocity=[[0.01, 5, 0]])
    states, status = _simulate(stepper, state, 2000)
    omega, q = states.angular_velocity[:, 0], states.orientation[:, 0]

    def momentum(q, w):
        root = jnp.sqrt(4 / h**2 - w @ w)
        p = 0.5 * h * (root * J @ w - jnp.cross(w, J @ w))
        return quat.rotation_matrix(q) @ p

    world = jax.vmap(momentum)(q, omega)
    drift = jnp.max(jnp.linalg.norm(world - world[0][None], axis=1)) / jnp.linalg.norm(
        world[0]
    )
    energy = 0.5 * jnp.einsum("ti,ij,tj->t", omega, J, omega)
    assert drift < 1e-10
    assert jnp.max(jnp.abs(energy / energy[0] - 1)) < 1e-12
    assert jnp.max(jnp.abs(jnp.linalg.norm(q, axis=1) - 1)) < 1e-12
    flips = int(jnp.sum(jnp.diff(jnp.sign(omega[:, 1])) != 0))
    assert flips >= 2
    assert status.converged.all()


def test_free_dice_conserves_energy():
    # §8 #4: a 1 kg, 0.2 m block thrown with v₀ = (1, 2, 3), ω₀ = (1, 1, 1) under
    # g = 10 for 5 s. The discrete energy ½ m v_{k-½}·v_{k+½} − m g·x_k + ½ωᵀJω is
    # the integrator's invariant.
    h = 0.01
    box = C.Box(1.0, 0.2)
    scene = C.Scene(
        [C.Sphere(1.0, 0.1, inertia=box.inertia)],
        [C.Plane(offset=-1e3)],
        friction=0.5,
        gravity=(0.0, 0.0, -10.0),
    )
    stepper = C.ContactStepper(scene, h)
    state = scene.state(
        position=[[0.0, 0, 0]], velocity=[[1.0, 2, 3]], angular_velocity=[[1.0, 1, 1]]
    )
    states, _ = _simulate(stepper, state, 500)
    v, x, w = (
        states.velocity[:, 0],
        states.position[:, 0],
        states.angular_velocity[:, 0],
    )
    energy = (
        0.5 * jnp.sum(v[:-1] * v[1:], 1)
        - x[:-1] @ scene.gravity
        + 0.5 * jnp.einsum("ti,ij,tj->t", w[1:], box.inertia, w[1:])
    )
    assert jnp.max(jnp.abs(energy / energy[0] - 1)) < 1e-8


@pytest.mark.parametrize(
    "h", [0.1, 0.05, 0.01, pytest.param(0.001, marks=pytest.mark.slow)]
)
def test_dropped_sphere_neither_penetrates_nor_bounces(h):
    # §8 #5: r = 0.1 from z = 1 (h = 0.001, 1500 steps, in `make test-all`).
    scene = C.Scene([C.Sphere(1.0, 0.1)], [C.Plane()], friction=0.5)
    stepper = C.ContactStepper(scene, h)
    states, status = _simulate(
        stepper, scene.state(position=[[0.0, 0, 1]]), round(1.5 / h)
    )
    gap = _gap(states, 0.1)[:, 0]
    landed = int(jnp.argmax(gap < 1e-6))
    assert landed > 0 and status.converged.all()
    assert jnp.min(gap) > -1e-9
    rest = stepper.btol / (G * h)
    assert jnp.max(gap[landed:]) <= rest  # no bounce
    assert jnp.max(jnp.abs(states.velocity[-1])) < 1e-8


def test_resting_gap_of_the_relaxed_model():
    # §8 #6 (m = 1, g = 1, h = 0.1, from the ground at rest): γ s = κ with
    # γ = m g h + m s / h, so s solves (m/h) s² + m g h s − κ = 0.
    scene = C.Scene(
        [C.Sphere(1.0, 0.1)], [C.Plane()], friction=0.5, gravity=(0, 0, -1.0)
    )
    stepper = C.ContactStepper(scene, 0.1)
    state = scene.state(position=[[0.0, 0, 0.1]])
    step = eqx.filter_jit(stepper.step_relaxed)
    for kappa, gap_d, gamma_d in [(1e-6, 9.99e-6, 0.10010), (1e-4, 9.16e-4, 0.109)]:
        nxt, status = step(state, kappa=kappa)
        gap = float(nxt.position[0, 2] - 0.1)
        exact = (-0.1 + np.sqrt(0.01 + 4 * kappa * 10)) / 20
        # The relaxation stops at |γ s − κ| < 1e-13: gap error 1e-13 / γ.
        np.testing.assert_allclose(gap, exact, atol=1e-11)
        assert _agrees(gap, gap_d) and _agrees(0.1 + gap / 0.1, gamma_d)
        assert status.converged


def test_tossed_box_comes_to_rest_flat():
    # §8 #7: a 0.5 m cube, μ = 0.1, tossed with a spin, rests flat after 5 s.
    scene = C.Scene([C.Box(1.0, 0.5)], [C.Plane()], friction=0.1)
    stepper = C.ContactStepper(scene, 0.01)
    state = scene.state(
        position=[[0.0, 0, 1]],
        orientation=[C.from_axis_angle([1, 1, 0], 0.6)],
        velocity=[[1.0, 0.5, 2]],
        angular_velocity=[[3.0, -2, 1]],
    )
    states, status = _simulate(stepper, state, 500)
    assert jnp.max(jnp.abs(states.velocity[-1])) < 1e-8
    assert jnp.max(jnp.abs(states.angular_velocity[-1])) < 1e-8
    assert abs(float(states.position[-1, 0, 2]) - 0.25) < 1e-3
    # Flat: one body axis is vertical.
    up = C.rotation_matrix(states.orientation[-1, 0]).T @ jnp.array([0.0, 0, 1])
    assert jnp.max(jnp.abs(up)) > 1 - 1e-6
    assert jnp.min(states.position[:, 0, 2]) > 0  # the centre never goes under
    assert status.converged.all()


@pytest.fixture(scope="module")
def box_run():
    """100 steps of a 0.2 m box on a plane at h = 0.01 (one compilation for the
    sliding, oblique and incline cases)."""
    h = 0.01

    def run(velocity, mu=0.5, gravity=(0.0, 0.0, -G)):
        scene = _box_scene(mu, gravity)
        state = scene.state(position=[[0.0, 0, 0.1 + 1e-6]], velocity=[velocity])
        return _simulate(C.ContactStepper(scene, h), state, 100)

    return run


def test_sliding_box_stops_at_the_coulomb_distance(box_run):
    # §8 #8: v₀ = 2, μ = 0.5: deceleration μ g, distance v₀²/(2μg) less about v₀h/2.
    h = 0.01
    states, status = box_run([2.0, 0, 0])
    x, v = states.position[:, 0, 0], states.velocity[:, 0, 0]
    exact = 4 / (2 * 0.5 * G)
    assert abs(float(x[-1]) - exact) < 2 * h
    np.testing.assert_allclose(float(x[-1]), exact - h, atol=1e-3)  # [D] 0.3978
    deceleration = -jnp.diff(v[2:30]) / h
    np.testing.assert_allclose(deceleration, 0.5 * G, rtol=1e-4)
    assert (
        float(jnp.max(jnp.abs(states.velocity[-1]))) < 1e-8 and status.converged.all()
    )


def test_oblique_slide_goes_straight(box_run):
    # §8 #9: second-order-cone friction opposes the velocity exactly.
    states, _ = box_run([1.5, 0.8, 0], mu=0.3)
    path = states.position[:, 0, :2] - states.position[0, 0, :2][None]
    heading = jnp.arctan2(path[1:, 1], path[1:, 0]) - jnp.arctan2(0.8, 1.5)
    assert jnp.max(jnp.abs(heading)) < 1e-9


@pytest.mark.parametrize(
    "degrees,mu,acceleration,atol",
    [
        (20, 0.5, 0.0, None),
        (30, 0.5, 0.65715, None),
        (40, 0.7, 1.04532, None),
        (35, 0.7, 0.00167, 2e-5),
    ],
)
def test_box_on_an_incline_sticks_iff_tan_below_mu(
    box_run, degrees, mu, acceleration, atol
):
    # §8 #10: gravity tilted by θ; sticks iff tan θ <= μ, else a = g (sin θ − μ cos θ).
    theta = np.deg2rad(degrees)
    exact = max(0.0, G * (np.sin(theta) - mu * np.cos(theta)))
    np.testing.assert_allclose(exact, acceleration, atol=5e-6)
    gravity = (G * np.sin(theta), 0.0, -G * np.cos(theta))
    states, status = box_run([0.0, 0, 0], mu=mu, gravity=gravity)
    x, v = states.position[:, 0, 0], states.velocity[:, 0, 0]
    assert status.converged.all()
    if exact == 0:
        assert abs(float(x[-1])) < 1e-6
        return
    a = (v[-1] - v[20]) / (0.01 * (len(v) - 21))
    if atol is None:
        np.testing.assert_allclose(a, exact, rtol=1e-4)
    else:
        np.testing.assert_allclose(a, exact, atol=atol)


@pytest.fixture(scope="module")
def point_mass():
    """A 1 kg ball of huge inertia (a point mass) resting on the ground, m = h·10
    = g = μ = 1 (§8 #11-13), and its one-step maps."""
    scene = C.Scene(
        [C.Sphere(1.0, 0.1, inertia=[1e9] * 3)],
        [C.Plane()],
        friction=1.0,
        gravity=(0.0, 0.0, -1.0),
    )
    state = scene.state(position=[[0.0, 0, 0.1]])

    def control(force, axis):
        return jnp.zeros((1, 6)).at[0, axis].set(force)

    # Forces as arrays: one compilation for all of them.

    @eqx.filter_jit
    def tight_jit(force, axis, kappa_grad):
        stepper = C.ContactStepper(scene, 0.1, kappa_grad=kappa_grad)
        return stepper.step(state, control(force, axis))

    @eqx.filter_jit
    def relaxed_jit(force, axis, kappa):
        stepper = C.ContactStepper(scene, 0.1)
        return stepper.step_relaxed(state, control(force, axis), kappa=kappa)

    def tight(force, axis, kappa_grad):
        return tight_jit(jnp.asarray(force, float), axis, kappa_grad)

    def relaxed(force, axis, kappa):
        return relaxed_jit(jnp.asarray(force, float), axis, kappa)

    return state, tight, relaxed


def test_push_from_rest_gradients_through_the_relaxed_model(point_mass):
    # §8 #11: κ → 0 gives Δx = max(0, h²(F − μmg)/m); with κ_grad = 1e-6 the IFT
    # derivative of the relaxed map equals its central differences and the sheet's
    # values, which smooth the jump of ∂Δx/∂F from 0 to 0.01.
    state, tight, relaxed = point_mass
    sheet = {0.8: 1e-5, 0.95: 1.8e-4, 1.0: 4.66e-3, 1.05: 9.80e-3, 1.2: 9.99e-3}
    grad = jax.jit(jax.grad(lambda f: tight(f, 0, 1e-6)[0].position[0, 0]))
    for force, expected in sheet.items():
        derivative = float(grad(force))
        eps = 1e-6
        plus, minus = (relaxed(force + s * eps, 0, 1e-6) for s in (1, -1))
        assert plus[1].converged and minus[1].converged  # relaxation residual < 1e-13
        fd = float(plus[0].position[0, 0] - minus[0].position[0, 0]) / (2 * eps)
        np.testing.assert_allclose(derivative, fd, rtol=1e-6)
        assert _agrees(derivative, expected), (force, derivative)
    # The tight map: no motion below μ m g, h² (F − μmg)/m above.
    assert abs(float(tight(0.8, 0, None)[0].position[0, 0])) < 1e-6
    np.testing.assert_allclose(
        float(tight(1.2, 0, None)[0].position[0, 0]), 0.01 * 0.2, rtol=1e-4
    )


def test_vertical_pull_derivative_at_lift_off(point_mass):
    # §8 #12: lift-off at F_z = m g; ∂Δz/∂F_z goes from 0 to h²/m, h²/(2m) at the kink.
    _, tight, _ = point_mass
    grad = jax.jit(jax.grad(lambda f: tight(f, 2, 1e-8)[0].position[0, 2]))
    assert _agrees(float(grad(1.0)), 5.00e-3)
    assert abs(float(grad(0.5))) < 1e-6
    # Above lift-off the relaxed contact still pulls a little (γ = κ / s).
    np.testing.assert_allclose(float(grad(1.5)), 0.01, rtol=1e-4)


def test_relaxed_friction_matches_its_closed_form(point_mass):
    # §8 #13: pushed by F for one step, the relaxed velocity is v = κ ξ/(β₀² − ξ²)
    # with ξ = F h − m v and β₀ = μ γ, γ = m (v_z + g h) from the vertical DEL row.
    _, _, relaxed = point_mass
    kappa, h = 1e-6, 0.1
    for force in (0.5, 0.9, 0.99):
        nxt, _ = relaxed(force, 0, kappa)
        v, vz = nxt.velocity[0, 0], nxt.velocity[0, 2]
        xi, beta0 = force * h - v, 1.0 * (vz + 1.0 * h)
        # To the relaxation's residual, 1e-13 on products of 1e-6.
        np.testing.assert_allclose(v, kappa * xi / (beta0**2 - xi**2), rtol=1e-7)


def test_gradients_in_smooth_regimes_match_finite_differences(box_run):
    # §8 #14, forward and reverse mode: flight (with respect to the initial velocity,
    # the mass and a force) and persistent sliding (initial velocity, friction).
    scene = C.Scene([C.Sphere(2.0, 0.1)], [C.Plane()], friction=0.5)
    stepper = C.ContactStepper(scene, 0.02)
    force = jnp.zeros((10, 1, 6)).at[:, 0, 0].set(3.0)

    def flight(params):
        v0, mass = params
        sc = eqx.tree_at(lambda s: s.bodies[0].mass, scene, mass)
        st = eqx.tree_at(lambda s: s.scene, stepper, sc)
        state = sc.state(position=[[0.0, 0, 2]], velocity=v0[None])
        return jnp.sum(
            _simulate(st, state, 10, force)[0].position[-1, 0] * jnp.array([1.0, 2, 3])
        )

    def sliding(params):
        v0, mu = params
        sc = _box_scene(mu)
        state = sc.state(position=[[0.0, 0, 0.1 + 1e-6]], velocity=[[v0, 0.3, 0]])
        return _simulate(C.ContactStepper(sc, 0.01), state, 20)[0].position[-1, 0, 0]

    for loss, params, direction in [
        (
            flight,
            (jnp.array([1.0, -1, 2]), jnp.array(2.0)),
            (jnp.array([0.3, 0.5, -1]), jnp.array(0.7)),
        ),
        (sliding, (jnp.array(2.0), jnp.array(0.5)), (jnp.array(1.0), jnp.array(-0.4))),
    ]:
        reverse = jax.grad(loss)(params)
        along = sum(jnp.vdot(g, d) for g, d in zip(reverse, direction, strict=True))
        _, forward = jax.jvp(loss, (params,), (direction,))
        eps = 1e-6
        shifted = [
            loss(
                jax.tree_util.tree_map(
                    lambda p, d, s=s: p + s * 1e-6 * d, params, direction
                )
            )
            for s in (1, -1)
        ]
        fd = (shifted[0] - shifted[1]) / (2 * eps)
        np.testing.assert_allclose(along, fd, rtol=1e-6)
        np.testing.assert_allclose(forward, along, rtol=1e-9)


def test_gradients_with_respect_to_shapes_and_planes():
    # At rest on a plane, the height follows the plane's offset and the radius or
    # half the box's height one for one.
    def rest_height(radius, offset, size):
        scene = C.Scene(
            [C.Sphere(1.0, radius), C.Box(1.0, size)],
            [C.Plane(offset=offset)],
            friction=0.5,
        )
        state = scene.state(
            position=[[0.0, 0, offset + radius], [1.0, 0, offset + size[2] / 2]]
        )
        return _simulate(C.ContactStepper(scene, 0.05), state, 5)[0].position[-1, :, 2]

    grads = jax.jacobian(rest_height, argnums=(0, 1, 2))(
        jnp.array(0.1), jnp.array(0.3), jnp.array([0.2, 0.3, 0.4])
    )
    np.testing.assert_allclose(grads[0], [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(grads[1], [1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(grads[2], [[0, 0, 0], [0, 0, 0.5]], atol=1e-6)


def test_spheres_collide_inelastically_and_conserve_momentum():
    # Head-on in zero gravity: perfectly inelastic, so they end with the common
    # velocity; momentum is conserved exactly and they do not interpenetrate.
    # A contact without load is degenerate (γ = s = 0), and the interior point
    # stops where γ s ≈ btol: the spheres part at about √btol / (m h), so this
    # scene asks for btol = 1e-16 (1e-10 measured 1.3e-4 m/s, 1e-16 1.3e-7).
    scene = C.Scene(
        [C.Sphere(1.0, 0.1), C.Sphere(3.0, 0.2)],
        [],
        friction=0.2,
        gravity=(0.0, 0.0, 0.0),
    )
    stepper = C.ContactStepper(scene, 0.01, btol=1e-16)
    state = scene.state(
        position=[[0.0, 0, 0], [1.0, 0, 0]], velocity=[[4.0, 0, 0], [-1.0, 0, 0]]
    )
    states, status = _simulate(stepper, state, 60)
    momentum = jnp.einsum("b,tbi->ti", scene.masses(), states.velocity)
    np.testing.assert_allclose(
        momentum, jnp.broadcast_to(momentum[0], momentum.shape), atol=1e-12
    )
    distance = jnp.linalg.norm(states.position[:, 0] - states.position[:, 1], axis=1)
    assert jnp.min(distance) > 0.3 - 1e-9
    common = momentum[0] / 4.0
    np.testing.assert_allclose(states.velocity[-1], jnp.stack([common] * 2), atol=1e-6)
    assert status.converged.all()


def test_hard_cases_stay_finite_and_report_their_status():
    # §8 #15: a Painlevé rod (μ = 2 > 4/3, tilted at tan θ = 2, sliding on one
    # end) and a 1e3 kg ball on a 1e-3 kg ball on the ground.
    theta = np.arctan(2.0)
    rod = C.Scene([C.Box(1.0, [1.0, 0.02, 0.02])], [C.Plane()], friction=2.0)
    corner = 0.5 * np.sin(theta) + 0.01 * np.cos(theta) + 1e-6
    state = rod.state(
        position=[[0.0, 0, corner]],
        orientation=[C.from_axis_angle([0, 1, 0], -theta)],
        velocity=[[-3.0, 0, 0]],
    )
    states, status = _simulate(C.ContactStepper(rod, 0.01), state, 30)
    assert all(
        bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(states)
    )
    assert status.num_steps.shape == (30,)
    stack = C.Scene(
        [C.Sphere(1e3, 0.1), C.Sphere(1e-3, 0.1)], [C.Plane()], friction=0.5
    )
    state = stack.state(position=[[0.0, 0, 0.3 + 2e-6], [0.0, 0, 0.1 + 1e-6]])
    states, status = _simulate(C.ContactStepper(stack, 0.01), state, 30)
    assert all(
        bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(states)
    )
    # A status flag per step, and finite residuals whether or not it converged.
    assert status.converged.dtype == jnp.bool_ and status.converged.shape == (30,)
    assert jnp.all(jnp.isfinite(status.residual_norm))


def test_vmap_over_initial_states_equals_a_loop():
    scene = C.Scene([C.Sphere(1.0, 0.1)], [C.Plane()], friction=0.5)
    stepper = C.ContactStepper(scene, 0.05)
    heights = jnp.array([0.3, 0.12, 0.5])
    states = jax.vmap(lambda z: scene.state(position=jnp.array([[0.0, 0, 1]]) * z))(
        heights
    )
    step = eqx.filter_jit(stepper.step)
    batched, status = eqx.filter_vmap(step)(states)
    for i, z in enumerate(heights):
        one, one_status = step(scene.state(position=[[0.0, 0, float(z)]]))
        np.testing.assert_allclose(
            batched.position[i], one.position, rtol=1e-12, atol=1e-15
        )
        assert int(status.num_steps[i]) == int(one_status.num_steps)


def test_bad_input_gets_errors_that_say_what_to_change():
    scene = C.Scene([C.Sphere(1.0, 0.1)], [C.Plane()], friction=0.5)
    cases = [
        (
            lambda: scene.state(position=[[0.0, 0, 1]], orientation=[[1.0, 0.1, 0, 0]]),
            "unit quaternions",
        ),
        (lambda: C.Sphere(0.0, 0.1), "`mass` must be > 0"),
        (lambda: C.Sphere(1.0, -0.1), "`radius` must be > 0"),
        (lambda: C.Box(1.0, [0.1, 0.0, 0.1]), "`size` must be > 0"),
        (
            lambda: C.Scene([C.Sphere(1.0, 0.1)], [C.Plane()], friction=-0.1),
            "`friction` must be >= 0",
        ),
        (lambda: C.ContactStepper(scene, 0.0), "`dt` must be a positive"),
        (lambda: scene.state(position=[[0.0, 0, 1], [0, 0, 2]]), r"shape \(1, 3\)"),
        (
            lambda: C.ContactStepper(scene, 0.1).step(
                scene.state(position=[[0.0, 0, 1]]), jnp.zeros((2, 6))
            ),
            r"\(1, 6\)",
        ),
        (lambda: scene.state(position=[[0.0, 0, 0.05]]), "inside a plane"),
        (
            lambda: C.ContactStepper(
                C.Scene(
                    [C.Sphere(jnp.float32(1), jnp.float32(0.1))],
                    [C.Plane()],
                    friction=0.5,
                ),
                0.1,
            ),
            "needs float64",
        ),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message):
            make()
    # Under jit the initial-state checks are runtime errors.
    bad = C.State(*(jnp.zeros((1, n)) for n in (3, 4, 3, 3)))
    with pytest.raises(Exception, match="unit quaternions"):
        _simulate(C.ContactStepper(scene, 0.1), bad, 2)


def test_rotation_matrix_round_trip():
    # Shepperd's rule for every branch: w, x, y or z the largest component.
    rng = np.random.default_rng(1)
    q = rng.normal(size=(64, 4))
    q[:4] = np.eye(4) + 0.01
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    back = jax.vmap(lambda p: quat.from_rotation_matrix(quat.rotation_matrix(p)))(
        jnp.asarray(q)
    )
    np.testing.assert_allclose(back, q * np.sign(q[:, :1]), atol=1e-14)


# Four spheres (r = 0.1 m, 1 kg, μ = 12/23) in a 1 m box: a state on which
# Mehrotra's iterations cycle for all their 50 steps (docs/design-decisions.md,
# "Stalls with many contacts"); reached by 68 steps from a random start.
_STALL = {
    "position": [
        [0.1724430747957495, 0.10002611917325266, 0.10000000000011768],
        [0.3013271941946695, 0.8999999145588868, 0.10000000000013956],
        [0.7843445789000393, 0.8602002574120399, 0.1000000000001166],
        [0.10000132257128788, 0.8999557867441725, 0.1183772386449628],
    ],
    "orientation": [
        [
            0.41101388630184776,
            0.5626510490900145,
            0.5736019890484987,
            -0.43066476566416184,
        ],
        [
            0.7622178958044906,
            -0.24286020252342308,
            0.11274392365729376,
            0.5893484614589369,
        ],
        [
            0.45189645614574275,
            0.8625442010801424,
            -0.1473321581597773,
            -0.1734944646895795,
        ],
        [
            0.44055959944112294,
            -0.10055726361838635,
            -0.8191494414928921,
            0.35325581180745835,
        ],
    ],
    "velocity": [
        [0.171508472382613, 0.00010764650986263926, -1.600642282724619e-11],
        [0.2576489825637057, -8.544084999323293e-06, -1.4222345388319805e-11],
        [-0.09659687962703906, -0.17007183703901432, -1.5286261398534543e-11],
        [3.5785881867978616e-05, -0.0006969880288801861, -1.1751060991827433],
    ],
    "angular_velocity": [
        [2.139800308915101, 0.04600206022060913, -1.1411682286607345],
        [0.9933439051784615, -0.12880111126116447, 3.503324407329351],
        [2.1335818608328956, -0.6965934736894049, 0.6465773108737936],
        [-3.494348791530673, -5.496636648392048, 4.102334392833906],
    ],
}


def test_path_following_rescues_a_cycling_mehrotra_solve():
    from diffphys.datasets._contact import box_scene
    from diffphys.solvers.contact._stepper import _residual

    scene = box_scene(4, 1.0, friction=12 / 23, radius=0.1)
    stepper = C.ContactStepper(scene, 0.01)
    state = scene.state(**_STALL)
    args, y0 = stepper._prepare(state, None)
    alone = dataclasses.replace(stepper.solver(), fallback_steps=0)
    sol = eqx.filter_jit(
        lambda y: dp.implicit.root_find(_residual, y, args, alone, throw=False)
    )(y0)
    assert sol.result != dp.RESULTS.successful
    nxt, status = eqx.filter_jit(stepper.step)(state)
    assert bool(status.converged)
    assert int(status.num_steps) > stepper.max_steps  # the fallback did it
    assert float(status.residual_norm) < stepper.rtol
    assert float(status.complementarity) < float(stepper.btol)
    gaps = scene.contacts(nxt.position, nxt.orientation).gap
    assert float(jnp.min(gaps)) > -1e-9


def test_refinement_halves_a_failed_step():
    # One Mehrotra iteration and four of path following cannot land a sphere on
    # the floor:
    # `refine=1` then takes the two steps at dt / 2, which fail as well.
    scene = C.Scene([C.Sphere(1.0, 0.1)], [C.Plane()], friction=0.5)
    state = scene.state(position=[[0.0, 0, 0.1 + 1e-3]], velocity=[[0.5, 0, -1]])
    stepper = C.ContactStepper(scene, 0.02, max_steps=1)
    states, status = _simulate_refined(stepper, state)
    assert not bool(status.converged[0]) and int(status.refinements[0]) == 1
    half = stepper.with_dt(stepper.dt / 2)
    assert float(half.btol) == pytest.approx(float(stepper.btol) / 8)

    @eqx.filter_jit
    def by_hand(state):
        mid, first = half.step(state)
        end, second = half.step(mid)
        return end, stepper.step(state)[
            1
        ].num_steps + first.num_steps + second.num_steps

    end, num_steps = by_hand(state)
    np.testing.assert_allclose(states.position[1], end.position, rtol=1e-14)
    assert int(status.num_steps[0]) == int(num_steps)
    # A step that converges at dt is not refined.
    easy, easy_status = _simulate_refined(C.ContactStepper(scene, 0.02), state)
    assert bool(easy_status.converged[0]) and int(easy_status.refinements[0]) == 0


def test_refinement_walks_the_tree_of_half_steps_depth_first():
    # A fake step on the time `t` that fails for steps longer than a quarter
    # while `t < 1/2`: one step of 1 at depth 2 fails, its first half fails, the
    # two quarters and the second half converge (5 attempts, in that order).
    from diffphys.solvers.contact._stepper import _refined_step

    tried = []

    def attempt(h, t):
        converged = ~((h > 0.25) & (t < 0.5))
        jax.debug.callback(
            lambda *x: tried.append(tuple(map(float, x))), t, h, ordered=True
        )
        return t + h, C.Status(converged, jnp.array(3), h, h / 10, jnp.array(0))

    t, status = jax.jit(lambda t: _refined_step(attempt, jnp.array(1.0), t, 2))(0.0)
    assert float(t) == 1.0 and bool(status.converged)
    assert tried == [(0, 1), (0, 0.5), (0, 0.25), (0.25, 0.25), (0.5, 0.5)]
    assert int(status.num_steps) == 15 and int(status.refinements) == 2
    # The largest residual of the accepted sub-steps (not of the failed ones).
    assert float(status.residual_norm) == 0.5
    # At the deepest level a failed attempt is accepted and reported.
    _, status = _refined_step(attempt, jnp.array(1.0), jnp.array(0.0), 1)
    assert not bool(status.converged) and int(status.refinements) == 1


@eqx.filter_jit
def _simulate_refined(stepper, state):
    return C.simulate(stepper, state, 1, refine=1)


def test_contact_spheres_dataset(tmp_path):
    # `diffphys generate contact-spheres`, tiny: the stored frames are what
    # `simulate` gives from the stored initial state, and the files follow our
    # per-body extension of The Well's schema.
    from diffphys.datasets._contact import box_scene

    with pytest.raises(ValueError, match="float64 only"):
        dp.datasets.make_config("contact-spheres", precision="float32")
    with pytest.raises(ValueError, match="body count"):
        dp.datasets.make_config("contact-spheres", num_points=65)
    config = dp.datasets.make_config(
        "contact-spheres", num_samples=2, num_points=2, num_steps=3, split="1,0,0"
    )
    assert config.precision == "float64" and config.dt == 0.01
    out = dp.datasets.generate(config, tmp_path / "spheres")
    shard = out / config.shards()[0].path
    with dp.datasets.check_file(shard) as f:
        assert f.attrs["grid_type"] == "entities"
        assert list(f["dimensions"].attrs["entity_dims"]) == ["body"]
        position = f["t1_fields/position"][...]
        rotation = f["t2_fields/orientation"][...]
        velocity = f["t1_fields/velocity"][...]
        spin = f["t1_fields/angular_velocity"][...]
        friction = f["scalars/friction"][...]
    assert position.shape == (2, 4, 2, 3) and rotation.shape == (2, 4, 2, 3, 3)
    assert 0.1 <= friction.min() and friction.max() <= 0.5
    np.testing.assert_allclose(
        rotation @ np.swapaxes(rotation, -1, -2),
        np.broadcast_to(np.eye(3), rotation.shape),
        atol=1e-13,
    )
    scene = box_scene(2, 1.0, friction=float(friction[1]), radius=0.1)
    state = scene.state(position=position[1, 0], velocity=velocity[1, 0])
    states, status = _simulate(C.ContactStepper(scene, config.dt), state, 3)
    assert bool(jnp.all(status.converged))
    R = jax.vmap(jax.vmap(quat.rotation_matrix))(states.orientation)
    np.testing.assert_allclose(position[1], states.position, atol=1e-12)
    np.testing.assert_allclose(velocity[1], states.velocity, atol=1e-12)
    np.testing.assert_allclose(rotation[1], R, atol=1e-12)
    world = jnp.einsum("tkij,tkj->tki", R, states.angular_velocity)
    np.testing.assert_allclose(spin[1], world, atol=1e-10)
    windows = dp.datasets.open(out, n_input=1, n_output=2)
    item = windows[0]
    assert item["input_fields"].shape == (1, 18, 2)
    np.testing.assert_array_equal(
        item["output_fields"][:, 3:12],
        rotation[0, 1:3].reshape(2, 2, 9).transpose(0, 2, 1),
    )
    with pytest.raises(ValueError, match="per-body data"):
        dp.datasets.export_pdebench(out, tmp_path / "x.hdf5")
    # `diffphys info` on the folder (tensor statistics) and on a shard.
    result = run_cli("info", out)
    assert result.returncode == 0, result.stderr
    assert "2 body entities (per-body fields)" in result.stdout
    assert "orientation" in result.stdout and "t2_fields" in result.stdout
    result = run_cli("info", shard)
    assert result.returncode == 0 and "boundaries none" in result.stdout
