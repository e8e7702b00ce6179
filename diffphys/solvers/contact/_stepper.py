from typing import no_type_check

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from ..._solution import RESULTS
from ...implicit import root_find
from ...implicit._adjoint import while_loop
from ...implicit._misc import stop_gradient
from . import _quaternion as quat
from ._ipm import InteriorPoint, soc_product
from ._scene import check_state, Scene, State


class Status(eqx.Module):
    """How a contact step's solve went (a trajectory of them from `simulate`).

    - `converged`: the interior-point solve (and, with `kappa_grad`, the
        relaxation) reached its tolerances.
    - `num_steps`: interior-point iterations.
    - `residual_norm`: `‖equality rows‖∞` at the end (impulses, gaps, velocities).
    - `complementarity`: `max ‖γ s‖∞, ‖β ∘ η‖∞` at the end.
    - `refinements`: how many times `simulate(..., refine=...)` halved the step
        to reach convergence (0: the step converged at `dt`).

    A refined step sums `num_steps` over its sub-steps and keeps the largest
    residuals.
    """

    converged: Bool[Array, ""]
    num_steps: Int[Array, ""]
    residual_norm: Float[Array, ""]
    complementarity: Float[Array, ""]
    refinements: Int[Array, ""]


def _split(y, num_bodies, num_contacts):
    B, P = num_bodies, num_contacts
    v, omega, gamma, s, beta, eta = jnp.split(y, np.cumsum([3 * B, 3 * B, P, P, 3 * P]))
    return (
        v.reshape(B, 3),
        omega.reshape(B, 3),
        gamma,
        s,
        beta.reshape(P, 3),
        eta.reshape(P, 3),
    )


def _advance(state: State, v, omega, dt):
    """The configuration at `k+1` from the midpoint velocities."""
    q = jax.vmap(quat.multiply)(
        state.orientation, jax.vmap(lambda w: quat.cayley(w, dt))(omega)
    )
    return State(state.position + dt * v, q, v, omega)


def _del_rotation(inertia, omega, dt):
    """`(h/2) [s(ω) J ω ∓ ω × J ω]` halves of the rotational DEL equation."""
    root = quat._root(omega, dt)
    momentum = inertia @ omega
    return 0.5 * dt * root * momentum, 0.5 * dt * jnp.cross(omega, momentum)


# Crosses optimistix's custom-JVP boundary: a plain global function.
@no_type_check
def _residual(y, args):
    """The contact step's residual (§4 of the fact sheet) at the unknowns `y =
    [v⁺, ω⁺, γ, s, β, η]`, with unrelaxed complementarity rows."""
    scene, state, control, dt = args
    B, P = scene.num_bodies, scene.num_contacts
    v, omega, gamma, s, beta, eta = _split(y, B, P)
    nxt = _advance(state, v, omega, dt)
    contacts = scene.contacts(nxt.position, nxt.orientation)
    a, b = scene.contact_bodies()
    rotations = jax.vmap(quat.rotation_matrix)(nxt.orientation)
    omega_world = jnp.einsum("bij,bj->bi", rotations, omega)

    def point_velocity(body, lever):
        return v[body] + jnp.cross(omega_world[body], lever)

    # Body `b` of a sphere–sphere contact feels the opposite of what `a` feels;
    # plane contacts (b = -1) have no second body.
    other, b = (b >= 0)[:, None], np.maximum(b, 0)
    relative = point_velocity(a, contacts.lever_a) - jnp.where(
        other, point_velocity(b, contacts.lever_b), 0.0
    )
    tangential = jnp.einsum("pij,pj->pi", contacts.tangent, relative)
    force = contacts.normal * gamma[:, None] + jnp.einsum(
        "pij,pi->pj", contacts.tangent, beta[:, 1:]
    )

    def on_bodies(per_contact_a, per_contact_b):
        return jax.ops.segment_sum(per_contact_a, a, B) - jax.ops.segment_sum(
            jnp.where(other, per_contact_b, 0.0), b, B
        )

    # World wrenches on each body, turned into body-frame torques at k+1.
    forces = on_bodies(force, force)
    torques = on_bodies(
        jnp.cross(contacts.lever_a, force), jnp.cross(contacts.lever_b, force)
    )
    torques = jnp.einsum("bji,bj->bi", rotations, torques)
    masses, inertias = scene.masses(), scene.inertias()
    translation = (
        masses[:, None] * (v - state.velocity)
        - dt * (masses[:, None] * scene.gravity[None] + control[:, :3])
        - forces
    )
    now = jax.vmap(quat.rotation_matrix)(state.orientation)
    applied = jnp.einsum("bji,bj->bi", now, control[:, 3:])
    spin_new, gyro_new = jax.vmap(_del_rotation, (0, 0, None))(inertias, omega, dt)
    spin_old, gyro_old = jax.vmap(_del_rotation, (0, 0, None))(
        inertias, state.angular_velocity, dt
    )
    rotation = spin_new + gyro_new - spin_old + gyro_old - dt * applied - torques
    mu = scene.contact_friction()
    return jnp.concatenate(
        [
            translation.ravel(),
            rotation.ravel(),
            s - contacts.gap,
            mu * gamma - beta[:, 0],
            (eta[:, 1:] - tangential).ravel(),
            gamma * s,
            soc_product(beta, eta).ravel(),
        ]
    )


class ContactStepper(eqx.Module):
    """One time step of rigid bodies with hard contact and Coulomb friction, the
    method of Dojo (Howell et al. 2022; §2–§6 of our fact sheet), differentiable.

    Each step finds the midpoint velocities `v⁺ = v_{k+½}`, `ω⁺` and, per contact,
    the normal impulse `γ`, gap slack `s`, friction impulse `β = (β₀, b)` and its
    dual `η`, such that

    - the midpoint variational integrator holds (discrete Euler–Lagrange, maximal
        coordinates): `m (v⁺ − v⁻) = h (m g + f) + Σ F_c` and
        `(h/2)[s(ω⁺) J ω⁺ + ω⁺ × J ω⁺ − s(ω⁻) J ω⁻ + ω⁻ × J ω⁻] = h τ + Σ τ_c`,
        `s(ω) = √(4/h² − ‖ω‖²)`, with `x_{k+1} = x_k + h v⁺` and the Cayley update
        `q_{k+1} = q_k ⊗ φ_h(ω⁺)` (unit norm by construction);
    - non-penetration at the next configuration: `s = φ(x_{k+1}, q_{k+1}) >= 0`,
        `γ >= 0`, `γ s = 0`;
    - maximum dissipation on the second-order cone (no pyramid): `β₀ = μ γ`,
        `η_t = v_t` (the contact point's tangential velocity), `β, η` in the cone,
        `β ∘ η = 0`, so sliding friction is `−μγ v_t/‖v_t‖`;

    all solved by `InteriorPoint` (Mehrotra predictor–corrector, dense LU, in one
    `lax.while_loop` with a static cap), in float64. Impacts are perfectly
    inelastic. Contact forces `F_c = n γ + Tᵀ b` act at the contact point.

    Gradients (forward and reverse) come from the implicit function theorem on
    this residual through `dp.implicit.root_find`, never through the iterations:
    with `kappa_grad=None` at the solution itself; with `kappa_grad = κ` at the
    relaxed solution of `γ s = κ`, `β ∘ η = κ (1, 0, 0)`, found by Newton from the
    solution (the primal state stays the tight one). The relaxation is a smooth
    force at a distance (a resting gap `κ/γ`, `γ ≈ m g h`) whose Jacobians carry
    information through contact events; the paper uses `κ = 3e-4` (SI units).

    **Arguments:**

    - `scene`: a `Scene` in float64 (JAX's 64-bit mode on, for example with the
        environment variable `JAX_ENABLE_X64=1`, before building it).
    - `dt`: the time step `h`, s, > 0.
    - `rtol`: tolerance of the equality rows (impulses, gaps, velocities).
    - `btol`: tolerance of the complementarity products; default the `h³` rule of
        the fact sheet's §9.2, `1e-4 · m_min |g|² h³` (with `|g| = 1` in zero
        gravity), which keeps the resting-gap jitter's velocity small.
    - `kappa_grad`: `None` or the relaxation of the gradients (above).
    - `max_steps`: Mehrotra iterations at most (static); the path-following
        fallback gets four times as many.

    `stepper(state, control=None)` returns the next `State` and raises if the solve
    failed; `stepper.step(state, control)` returns `(State, Status)` and never
    raises (for `vmap`). `control` is `(B, 6)`: world-frame forces (N) and
    torques (N m) on each body's centre, held over the step.
    """

    scene: Scene
    dt: Float[Array, ""]
    rtol: float
    btol: float | Array
    kappa_grad: float | None
    max_steps: int = eqx.field(static=True)
    btol_rule: bool = eqx.field(static=True)

    def __init__(
        self,
        scene: Scene,
        dt,
        *,
        rtol: float = 1e-10,
        btol: float | None = None,
        kappa_grad: float | None = None,
        max_steps: int = 50,
    ):
        if not isinstance(scene, Scene):
            raise ValueError(
                f"`scene` must be a contact Scene, got {type(scene).__name__}."
            )
        if scene.gravity.dtype != jnp.float64:
            raise ValueError(
                "Contact dynamics needs float64 (its tolerances scale like h³; float32 "
                "cannot reach them): turn on JAX's 64-bit mode (environment variable "
                "JAX_ENABLE_X64=1, or JAX's x64 config flag) before building the "
                "bodies and the scene."
            )
        dt = jnp.asarray(dt, jnp.float64)
        if dt.shape != () or (
            not isinstance(dt, jax.core.Tracer) and not float(dt) > 0
        ):
            raise ValueError(f"`dt` must be a positive number of seconds, got {dt}.")
        self.btol_rule = btol is None
        if btol is None:
            # Traceable: steppers are built inside jitted and differentiated code.
            g = jnp.linalg.norm(scene.gravity)
            g = jnp.where(g > 0, g, 1.0)
            btol = stop_gradient(1e-4 * jnp.min(scene.masses()) * g**2 * dt**3)
        elif not btol > 0:
            raise ValueError(f"`btol` must be > 0, got {btol}.")
        if not rtol > 0:
            raise ValueError(f"`rtol` must be > 0, got {rtol}.")
        if kappa_grad is not None and not kappa_grad > 0:
            raise ValueError(f"`kappa_grad` must be None or > 0, got {kappa_grad}.")
        if max_steps < 1:
            raise ValueError(f"`max_steps` must be >= 1, got {max_steps}.")
        self.scene = scene
        self.dt = dt
        self.rtol = rtol
        self.btol = btol
        self.kappa_grad = kappa_grad
        self.max_steps = max_steps

    def with_dt(self, dt) -> "ContactStepper":
        """The same stepper at another step `dt` (a default `btol` follows its `h³`
        rule); `dt` may be traced."""
        return ContactStepper(
            self.scene,
            dt,
            rtol=self.rtol,
            btol=None if self.btol_rule else self.btol,
            kappa_grad=self.kappa_grad,
            max_steps=self.max_steps,
        )

    def solver(self, kappa: float | None = None) -> InteriorPoint:
        """The step's `InteriorPoint` (with `4 max_steps` iterations of path
        following where Mehrotra's method fails); with `kappa`, the relaxation's
        (Newton to `‖r(w; κ)‖∞ < 1e-13`, at most 30 iterations)."""
        P = self.scene.num_contacts
        return InteriorPoint(
            6 * self.scene.num_bodies,
            P,
            P,
            rtol=self.rtol if kappa is None else 1e-13,
            btol=self.btol,
            max_steps=self.max_steps if kappa is None else 30,
            kappa=kappa,
            fallback_steps=4 * self.max_steps if kappa is None else 0,
        )

    def _prepare(self, state, control):
        B, P = self.scene.num_bodies, self.scene.num_contacts
        if control is None:
            control = jnp.zeros((B, 6), self.dt.dtype)
        control = jnp.asarray(control, self.dt.dtype)
        if control.shape != (B, 6):
            raise ValueError(
                f"`control` must have shape ({B}, 6) (force, torque per body), got "
                f"{control.shape}."
            )
        if state.position.shape != (B, 3):
            raise ValueError(
                f"The state has {state.position.shape[0]} bodies, the scene {B}."
            )
        args = (self.scene, state, control, self.dt)
        y0 = jnp.concatenate(
            [
                state.velocity.ravel(),
                state.angular_velocity.ravel(),
                jnp.zeros(8 * P, self.dt.dtype),
            ]
        )
        return args, y0

    def _relax(self, y, args, kappa):
        """Newton on the relaxed residual from the tight solution `y`."""
        return root_find(_residual, y, args, self.solver(kappa), throw=False)

    def _finish(self, state, y, sol, converged):
        v, omega, *_ = _split(y, self.scene.num_bodies, self.scene.num_contacts)
        status = Status(
            converged,
            sol.stats["num_steps"],
            sol.stats["residual_norm"],
            sol.stats["complementarity"],
            jnp.array(0),
        )
        return _advance(state, v, omega, self.dt), status

    def step(
        self, state: State, control=None, *, refine: int = 0
    ) -> tuple[State, Status]:
        """One step; returns the next state and the solve's `Status` (no raising).

        With `refine > 0`, a step that does not converge is redone as two steps of
        `dt / 2` with the same control, each of them refined again where it fails,
        at most `refine` halvings deep (static; `Status.refinements` says how deep
        it went). The interior point can stall next to a friction cone's boundary
        with many contacts (docs/design-decisions.md); a smaller step moves it
        off. The sub-steps run in one bounded loop of at most `2^(refine+1) − 1`
        solves (forward and reverse differentiable); under `vmap` each of them
        runs for every member of the batch.
        """
        if refine < 0:
            raise ValueError(f"`refine` must be >= 0, got {refine}.")
        if refine == 0:
            return self._step(state, control)

        def attempt(dt, state):
            return self.with_dt(dt)._step(state, control)

        return _refined_step(attempt, self.dt, state, refine)

    def _step(self, state, control):
        args, y0 = self._prepare(state, control)
        sol = root_find(_residual, y0, args, self.solver(), throw=False)
        y, converged = sol.value, sol.result == RESULTS.successful
        if self.kappa_grad is not None:
            # The tight state, with the relaxed solution's derivatives.
            y = stop_gradient(y)
            relaxed = self._relax(y, args, self.kappa_grad)
            y = y + relaxed.value - stop_gradient(relaxed.value)
            converged = converged & (relaxed.result == RESULTS.successful)
        return self._finish(state, y, sol, converged)

    def step_relaxed(
        self, state: State, control=None, *, kappa: float
    ) -> tuple[State, Status]:
        """One step of the relaxed model itself, `γ s = κ`, `β ∘ η = κ (1, 0, 0)`
        (a smooth force at a distance): the map whose derivatives `kappa_grad = κ`
        gives `step`. Found by Newton from the tight solution; the status is the
        relaxation's."""
        if not kappa > 0:
            raise ValueError(f"`kappa` must be > 0, got {kappa}.")
        args, y0 = self._prepare(state, control)
        tight = root_find(_residual, y0, args, self.solver(), throw=False)
        sol = self._relax(stop_gradient(tight.value), args, kappa)
        converged = (tight.result == RESULTS.successful) & (
            sol.result == RESULTS.successful
        )
        return self._finish(state, sol.value, sol, converged)

    def __call__(self, state: State, control=None) -> State:
        nxt, status = self.step(state, control)
        position = eqx.error_if(
            nxt.position,
            ~status.converged,
            "The contact step did not converge; raise `max_steps`, loosen `rtol`/"
            "`btol`, or lower `dt` (stepper.step(...) returns the status instead).",
        )
        return eqx.tree_at(lambda s: s.position, nxt, position)


def _refined_step(attempt, dt, state, depth: int):
    """A step of `dt` and its halvings where an attempt fails, as a depth-first
    walk over a binary tree of sub-steps, in one loop whose step size is traced
    (one compiled solve, whatever the depth). `attempt(h, state) -> (state,
    Status)` is one step of `h`; the deepest level's attempts are accepted whether
    they converge or not. `position` counts the finest sub-steps done; after an
    accepted sub-step the walk goes on at the level of the next node, `depth −
    (trailing zeros of position)`."""
    finest = 2**depth

    def cond_fun(carry):
        return carry[1] < finest

    def body_fun(carry):
        state, position, level, status = carry
        refinements = jnp.maximum(status.refinements, level)
        nxt, tried = attempt(dt / 2.0 ** level.astype(dt.dtype), state)
        accept = tried.converged | (level == depth)
        position = jnp.where(accept, position + (finest >> level), position)
        trailing = jax.lax.population_count((position & -position) - 1)
        level = jnp.where(accept, depth - trailing, level + 1)
        state = jax.tree_util.tree_map(
            lambda new, old: jnp.where(accept, new, old), nxt, state
        )
        status = Status(
            status.converged & (tried.converged | ~accept),
            status.num_steps + tried.num_steps,
            jnp.maximum(
                status.residual_norm, jnp.where(accept, tried.residual_norm, 0.0)
            ),
            jnp.maximum(
                status.complementarity,
                jnp.where(accept, tried.complementarity, 0.0),
            ),
            refinements,
        )
        return state, position, level, status

    zero, dtype = jnp.array(0), dt.dtype
    status = Status(
        jnp.array(True), zero, jnp.zeros((), dtype), jnp.zeros((), dtype), zero
    )
    state, _, _, status = while_loop(
        cond_fun,
        body_fun,
        (state, zero, zero, status),
        max_steps=2 ** (depth + 1) - 1,
        kind="bounded",
    )
    return state, status


def simulate(
    stepper: ContactStepper,
    state0: State,
    num_steps: int,
    controls=None,
    *,
    include_init: bool = True,
    refine: int = 0,
) -> tuple[State, Status]:
    """Roll a `ContactStepper` out for `num_steps` steps in one `lax.scan`.

    **Arguments:**

    - `stepper`, `state0`: the stepper and the initial `State` (checked: unit
        quaternions, no penetration).
    - `num_steps`: steps (static).
    - `controls`: `None` or `(num_steps, B, 6)` forces and torques per step.
    - `include_init`: put `state0` first (`num_steps + 1` states).
    - `refine`: halvings of a step that does not converge (static; see
        `ContactStepper.step`). Under `vmap` every sub-step runs for every
        trajectory, so batch with `refine=0` and redo the trajectories that
        failed.

    **Returns:**

    `(states, status)`: a `State` whose fields have a leading time axis, and the
    `Status` of every step (`(num_steps,)` fields). Failed steps do not raise;
    read `status.converged`.
    """
    if not isinstance(stepper, ContactStepper):
        raise ValueError(
            f"`stepper` must be a ContactStepper, got {type(stepper).__name__}."
        )
    if num_steps < 1:
        raise ValueError(f"`num_steps` must be >= 1, got {num_steps}.")
    B = stepper.scene.num_bodies
    if controls is None:
        controls = jnp.zeros((num_steps, B, 6), stepper.dt.dtype)
    controls = jnp.asarray(controls, stepper.dt.dtype)
    if controls.shape != (num_steps, B, 6):
        raise ValueError(
            f"`controls` must have shape ({num_steps}, {B}, 6), got {controls.shape}."
        )
    if refine < 0:
        raise ValueError(f"`refine` must be >= 0, got {refine}.")
    state0 = check_state(stepper.scene, state0)

    def body(state, control):
        nxt, status = stepper.step(state, control, refine=refine)
        return nxt, (nxt, status)

    _, (states, status) = jax.lax.scan(body, state0, controls)
    if include_init:
        states = jax.tree_util.tree_map(
            lambda first, rest: jnp.concatenate([first[None], rest]), state0, states
        )
    return states, status
