import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._custom_types import Field, FieldLike, ScalarLike, Trajectory
from ._base import AbstractConservativeStepper, AbstractStepper
from ._grid import float_state, is_concrete


def rollout(
    stepper: AbstractStepper | Callable[..., Field],
    u0: FieldLike,
    num_steps: int,
    *,
    include_init: bool = True,
    save_every: int = 1,
    t0: ScalarLike | None = None,
    dt: float | None = None,
    throw: bool = True,
    checkpoint: bool | int = False,
) -> Trajectory:
    """Apply `stepper` autoregressively, `num_steps` times, with `lax.scan`.

    **Arguments:**

    - `stepper`: an `AbstractStepper` (called `stepper(u, t)`, the time advanced by
        its `dt`), a neural operator (`dp.operators.AbstractOperator`, the same call)
        or any `u -> u_next` on an unbatched channels-first field.
    - `u0`: the initial state, shape `(C, *N)`; an integer or boolean one is promoted
        to the default float dtype, as every stepper does.
    - `num_steps`: number of saved steps (static).
    - `include_init`: prepend `u0`, giving `num_steps + 1` frames.
    - `save_every`: solver steps between saved frames (static); the trajectory then
        spans `num_steps * save_every` solver steps.
    - `t0`: the time of `u0`. An `AbstractStepper` always steps in time, from
        `t0 = 0` by default; for anything else `t0=` switches it on: each step is then
        called as `stepper(u, t)` (operators take and may ignore `t`).
    - `dt`: the time between steps of a stepper that has none of its own (an
        operator); default 1, the time then counts steps. An `AbstractStepper` uses
        its `dt`, and refuses another.
    - `throw`: raise `eqx.EquinoxRuntimeError` if the trajectory holds a NaN or inf
        (a blow-up is then never returned silently). Called outside `jit`, the
        message names the first bad frame, its solver steps and time, or says that
        the initial state already held one; under a transformation it says only
        that one appeared (as `eqx.EquinoxRuntimeError` under `eqx.filter_jit`;
        `jax.jit` wraps it in its own runtime error). With `False` the caller
        checks. In an optimisation loop, where a trial parameter may blow the
        solver up, roll out with `throw=False` and skip the steps whose gradient
        is not finite (a NaN in the forward pass reaches the gradient even through
        `jnp.where`): `optax.apply_if_finite(optimiser, max_consecutive_errors)`
        does that.
    - `checkpoint`: how reverse mode differentiates the rollout. `False`: plain
        backprop through the scan, which stores every step's intermediates (memory
        linear in the steps; the implicit steppers store only their solutions, the
        explicit ones each stage of each step). `True`: √T checkpointing: the saved
        steps are cut into about √`num_steps` segments (and the `save_every` solver
        steps between two frames into about √`save_every`); only the state at each
        segment's start is kept, and each segment is recomputed during the backward
        pass (`jax.checkpoint`), so the intermediates' memory grows as √T, at the
        price of one or two more forward passes. An integer `k`: `k` segments of
        saved steps. The saved frames are the output and are kept either way.
        Works under `jvp`, `vmap` and `grad` alike.

    **Returns:**

    The trajectory, shape `(T, C, *N)` with `T = num_steps (+ 1)`. Batch with
    `jax.vmap(lambda u: rollout(stepper, u, n))`. Compiled once per stepper
    structure, as diffrax's `diffeqsolve` (`eqx.filter_jit`): array fields are
    traced, so a new stepper with other values (a viscosity, a finite-difference
    probe) reuses the compiled rollout.
    """
    _check_steps(num_steps, save_every)
    u0 = float_state(u0)
    if isinstance(stepper, AbstractStepper):
        if dt is not None and dt != stepper.dt:
            raise ValueError(
                f"rollout(..., dt={dt}): {type(stepper).__name__} steps by its own "
                f"dt = {stepper.dt}; build it with the dt you want instead."
            )
        dt = stepper.dt
    segments = _segments(checkpoint, num_steps)
    frames, finite, initial = _rollout(
        stepper, u0, num_steps, include_init, save_every, t0, dt, segments
    )
    if throw:
        promise = stepper if isinstance(stepper, AbstractStepper) else None
        frames = _check_frames(
            frames, finite, initial, include_init, save_every, dt, promise, u0
        )
    return frames


def _check_frames(
    frames, finite, initial, include_init: bool, save_every: int, dt, stepper, u0
):
    """Raise if a frame is not finite: here, naming the frame, when the values are
    concrete; at run time, by `eqx.error_if`, when the caller traces (jit, vmap,
    grad)."""
    if is_concrete(finite):
        if not bool(initial):
            raise eqx.EquinoxRuntimeError(
                "rollout: the initial state holds NaN or inf (before any step); "
                "check how it was built."
            )
        if not np.all(finite):
            broken = None if stepper is None else stepper.broken_promise(u0)
            _raise_if_nonfinite(
                np.asarray(finite), include_init, save_every, dt, broken
            )
        return frames
    # `finite` (per frame) is computed already: no second pass over the frames.
    return eqx.error_if(
        frames,
        ~jnp.all(finite),
        "The rollout produced NaN or inf. The time step is likely unstable for this "
        "state (reduce dt, raise the viscosity, or bound |u| lower), or the initial "
        "state holds NaN/inf. Call rollout(..., throw=False) outside jit and look "
        "for the first non-finite frame.",
    )


def _raise_if_nonfinite(
    finite, include_init: bool, save_every: int, dt, broken: str | None
) -> None:
    """`finite[k]`: whether saved frame `k` is all finite; `broken`: the promise
    the initial state broke, if any (`AbstractStepper.broken_promise`)."""
    frame = int(np.argmin(finite))
    last = (frame + (0 if include_init else 1)) * save_every  # solver steps
    if save_every == 1:
        steps = f"step {last}"
    else:
        steps = f"steps {last - save_every + 1}..{last}"
    when = "" if dt is None else f", t <= {last * dt:.6g}"
    cause = (
        f"The initial state breaks a promise: {broken}"
        if broken
        else "The time step is likely unstable for this state: reduce dt, raise the "
        "viscosity, or bound |u| lower (a stepper's `max_speed` is a promise about "
        "the states it meets)."
    )
    raise eqx.EquinoxRuntimeError(
        f"rollout: NaN or inf first in saved frame {frame} (solver {steps}{when}). "
        f"{cause} Call rollout(..., throw=False) to get the frames."
    )


@eqx.filter_jit
def _rollout(stepper, u0, num_steps, include_init, save_every, t0, dt, segments):
    """The frames, whether each is finite, and whether `u0` is."""
    if isinstance(stepper, AbstractStepper) and t0 is None:
        t0 = 0.0
    if t0 is None:

        def step(u, _):
            return stepper(u), None

        start = u0
    else:
        increment = 1.0 if dt is None else dt

        def step(carry, _):
            u, t = carry
            return (stepper(u, t), t + increment), None

        start = (u0, jnp.asarray(t0, u0.dtype))

    def saved(carry):
        # Each frame's finiteness is checked as it is saved, while it is in cache,
        # not by a second pass over the whole trajectory.
        u = carry if t0 is None else carry[0]
        return u, jnp.all(jnp.isfinite(u))

    frames, finite = _saved_frames(step, start, num_steps, save_every, saved, segments)
    initial = jnp.all(jnp.isfinite(u0))
    if include_init:
        frames = jnp.concatenate([u0[None], frames])
        finite = jnp.concatenate([initial[None], finite])
    return frames, finite, initial


def _check_steps(num_steps: int, save_every: int) -> None:
    if num_steps < 0:
        raise ValueError(f"`num_steps` must be >= 0, got {num_steps}.")
    if save_every < 1:
        raise ValueError(f"`save_every` must be >= 1, got {save_every}.")


def _segments(checkpoint: bool | int, num_steps: int) -> int:
    """The number of checkpointed segments `checkpoint` asks for (0: none)."""
    if checkpoint is False or num_steps == 0:
        return 0
    if checkpoint is True:
        return math.isqrt(num_steps - 1) + 1  # ceil(sqrt(num_steps))
    if isinstance(checkpoint, int) and 1 <= checkpoint:
        return min(checkpoint, num_steps)
    raise ValueError(
        f"`checkpoint` must be True, False or a number of segments >= 1, got "
        f"{checkpoint!r}."
    )


def _saved_frames(
    step, start, num_steps: int, save_every: int, saved: Callable, segments: int = 0
):
    """`saved(carry)` after every `save_every` applications of the scan body
    `step`, `num_steps` times; with `segments`, checkpointed: the saved steps in
    that many segments, the solver steps between two saved frames in about
    √`save_every` (see `rollout`)."""
    inner = _segments(bool(segments), save_every) if save_every > 1 else 0

    def saved_step(carry, _):
        if save_every > 1:
            carry, _ = _scan(step, carry, save_every, inner)
        else:
            carry, _ = step(carry, None)
        return carry, saved(carry)

    return _scan(saved_step, start, num_steps, segments)[1]


def _scan(body, carry, length: int, segments: int):
    """`lax.scan(body, carry, length=length)`; with `segments`, cut into that many
    segments, each rematerialised in the backward pass (`jax.checkpoint`), so only
    the carry at each segment's start is stored."""
    if not segments:
        return lax.scan(body, carry, length=length)
    size, rest = divmod(length, segments)  # `rest` segments take one step more

    def segment(steps):
        @jax.checkpoint
        def run(c, _):
            return lax.scan(body, c, length=steps)

        return run

    carry, longer = lax.scan(segment(size + 1), carry, length=rest)
    carry, others = lax.scan(segment(size), carry, length=segments - rest)

    def flat(x):
        return x.reshape(-1, *x.shape[2:])

    ys = jax.tree.map(lambda a, b: jnp.concatenate([flat(a), flat(b)]), longer, others)
    return carry, ys


def _check_finite(frames, message: str):
    return eqx.error_if(frames, ~jnp.all(jnp.isfinite(frames)), message)


@eqx.filter_jit
def mass_budget(
    stepper,
    u0: FieldLike,
    num_steps: int,
    *,
    t0: ScalarLike = 0.0,
    save_every: int = 1,
    throw: bool = True,
    checkpoint: bool | int = False,
) -> tuple[Trajectory, Float[Array, " T"]]:
    """Roll out a conservative stepper and account for its boundary fluxes: the
    right-hand side `b(t)` of a mass constraint `G u = b` where no closed-form mass
    curve exists (any diffusivity, any boundary data).

    **Arguments:** as `rollout` (`checkpoint` included); `stepper` is an
    `AbstractConservativeStepper` (`PorousMedium`, `ConservationLaw`):
    `step(u, t) -> (u_next, inflow)` and `mass(u)`.

    **Returns:** `(frames, b)`: the trajectory `(T + 1, C, N)` and `b`, shape
    `(T + 1,)`: `mass(u0)` plus the mass that entered through the ends up to each
    frame. The scheme is conservative, so `mass(frames[k]) == b[k]` to round-off;
    pair `b` with `dp.constraints.mass_weights(x, rule="cells")` to constrain a
    learned model to the solver's budget.
    """
    if not isinstance(stepper, AbstractConservativeStepper):
        raise ValueError(
            "mass_budget needs a stepper with `step(u, t) -> (u_next, inflow)` and "
            "`mass(u)`, an AbstractConservativeStepper (PorousMedium, "
            f"ConservationLaw); got {type(stepper).__name__}."
        )
    _check_steps(num_steps, save_every)
    u0 = float_state(u0)

    def step(carry, _):
        u, t, entered = carry
        u_next, inflow = stepper.step(u, t)
        return (u_next, t + stepper.dt, entered + jnp.sum(inflow)), None

    mass0 = stepper.mass(u0)
    start = (u0, jnp.asarray(t0, u0.dtype), jnp.zeros((), mass0.dtype))
    frames, entered = _saved_frames(
        step,
        start,
        num_steps,
        save_every,
        lambda c: (c[0], c[2]),
        _segments(checkpoint, num_steps),
    )
    frames = jnp.concatenate([u0[None], frames])
    budget = mass0 + jnp.concatenate([jnp.zeros((1,), entered.dtype), entered])
    if throw:
        frames = _check_finite(
            frames,
            "mass_budget: the rollout produced NaN or inf (reduce dt, or check the "
            "initial state).",
        )
    return frames, budget
