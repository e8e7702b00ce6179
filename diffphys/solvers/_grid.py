"""The one home of the checks every grid solver makes when it is built and when it
is called: the grid itself, the state's shape, scalar physical parameters and the
explicit schemes' stability (Courant) limits."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._custom_types import Array, ArrayLike, FieldLike


def check_grid(
    num_spatial_dims: int,
    domain_extent: float,
    num_points: int,
    dt: float,
    *,
    name: str,
    dims: tuple[int, ...] = (1, 2, 3),
) -> None:
    """Refuse a grid `(d, L, N, dt)` that `name` cannot run on."""
    if num_spatial_dims not in dims:
        only = " or ".join(str(d) for d in dims)
        hint = ""
        if dims == (1,):
            hint = " (it is 1D only)"
        raise ValueError(
            f"{name}: `num_spatial_dims` must be {only}{hint}, got {num_spatial_dims}."
        )
    if domain_extent <= 0 or num_points < 4 or dt <= 0:
        raise ValueError(
            f"{name}: need domain_extent > 0, num_points >= 4 and dt > 0; got "
            f"domain_extent={domain_extent}, num_points={num_points}, dt={dt}."
        )


def check_courant(
    name: str,
    dt: float,
    rate: float,
    limit: float,
    *,
    what: str,
    values: str,
    guard: bool = False,
) -> None:
    """Refuse `dt` when `dt · rate > limit`; the message names the largest stable
    `dt = limit / rate`.

    - `rate`: the inverse time scale of the explicit terms (e.g. `max_speed / dx`).
    - `what`: the limit as a formula (`"max_speed dt/dx"`); `values`: the values it
        was evaluated with, for the message.
    - `guard`: the limit is a guard against gross mistakes rather than a proven
        stability bound; the message then says "admissible", not "stable".
    """
    if dt * rate > limit:
        verdict, bound = (
            ("breaks", "admissible") if guard else ("is unstable", "stable")
        )
        raise ValueError(
            f"{name}: dt = {dt} {verdict} the limit {what} <= {limit} (here "
            f"{dt * rate:.3g}; {values}); the largest {bound} dt is {limit / rate:.4g}."
        )


def is_concrete(x) -> bool:
    """False for a tracer (the value is unknown at construction, e.g. under vmap)."""
    return not isinstance(x, jax.core.Tracer)


def scalar_parameter(name: str, value: ArrayLike, *, allow_zero: bool) -> Array:
    """A physical parameter as a scalar array field; a negative (or zero, unless
    `allow_zero`) value is refused: a concrete one at once, a traced one (under
    `jit`, `vmap`, `grad`) by a run-time check, rather than as a NaN later."""
    value = jnp.asarray(value)
    if jnp.ndim(value) != 0:
        raise ValueError(
            f"`{name}` must be a scalar; for a batch of values vmap over the "
            f"constructor: eqx.filter_vmap(lambda p: Stepper(..., {name}=p))(values)."
        )
    bound = ">= 0" if allow_zero else "> 0"
    if is_concrete(value):
        v = float(value)
        if v < 0 or (v == 0 and not allow_zero):
            raise ValueError(f"`{name}` must be {bound}, got {v}.")
        return value
    bad = value < 0 if allow_zero else value <= 0
    return eqx.error_if(
        value, bad, f"`{name}` must be {bound}; a traced value was not."
    )


def state_shape(num_channels: int, num_spatial_dims: int, num_points: int):
    return (num_channels,) + (num_points,) * num_spatial_dims


def check_state(u: FieldLike, shape: tuple[int, ...]) -> Array:
    """Refuse a state that is not `shape` (channels first, unbatched); return it as
    a float array (`float_state`)."""
    if jnp.shape(u) != tuple(shape):
        raise ValueError(
            f"The state must have shape {tuple(shape)} (channels first, unbatched; use "
            f"jax.vmap for batches), got {jnp.shape(u)}."
        )
    return float_state(u)


def float_state(u) -> Array:
    """`u` as an array, an integer or boolean one promoted to the default float
    dtype (float64 in 64-bit mode, else float32): the one rule of every
    stepper, so that a step never truncates `jnp.where(x < 0.5, 1, 0)` to integers.
    Float and complex states keep their dtype."""
    u = jnp.asarray(u)
    if jnp.issubdtype(u.dtype, jnp.inexact):
        return u
    return u.astype(jnp.result_type(float))


def field_at(value, t, like: Array) -> Array | None:
    """A time-dependent right-hand side at time `t`: `value` is `None`, a field of
    `like`'s shape, or `f(t) -> field`."""
    if value is None:
        return None
    out = value(t) if callable(value) else value
    if jnp.shape(out) != like.shape:
        raise ValueError(
            f"The forcing must be a field of the state's shape {like.shape}, got "
            f"{jnp.shape(out)}."
        )
    return jnp.asarray(out, like.dtype)


def speed_promise(name: str, max_speed: float | None, u) -> str | None:
    """The broken `max_speed` promise of stepper `name`, if the concrete state `u`
    exceeds it (`AbstractStepper.broken_promise`)."""
    if max_speed is None:
        return None
    largest = float(np.max(np.abs(np.asarray(u))))
    if largest <= max_speed:
        return None
    return (
        f"The state has max|u| = {largest:.4g}, above the max_speed = {max_speed:.4g} "
        f"promised to {name}, whose Courant check relied on it: build it with "
        f"max_speed >= {largest:.4g} and a dt to match."
    )
