from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from .._custom_types import Field, ScalarLike
from ..operators import AbstractOperator, apply_model
from ._probconserv import Diagonal, HardProjection, ProbConserv


METHODS = ("hard", "probconserv")


class MassConserving(AbstractOperator):
    """Wrap a stepper or operator so that its output has its input's total mass,
    channel by channel (for closed systems: periodic or no-flux domains).

    - `"hard"`: `HardProjection` of the output: a uniform shift.
    - `"probconserv"`: the `ProbConserv` update (`σ_G = 0`) with the model's
        predictive variance `exp(model.log_variance(u))` (e.g. `dp.operators.JAWS`;
        it must have one), so the correction lands where the model is unsure.

    The weights are uniform (cells of equal volume). Differentiable: train
    through it end to end (`diffphys train --constraint ...`, the ProbHardE2E
    recipe), or wrap a trained model for rollouts. An `AbstractOperator`: called as
    `model(u, t=0.0, *, key=None)`; the time and key reach the wrapped operator.
    """

    model: Callable
    method: str = eqx.field(static=True)

    def __check_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"Unknown method {self.method!r}; choose from {METHODS}.")
        if self.method == "probconserv" and not hasattr(self.model, "log_variance"):
            raise ValueError(
                "MassConserving(method='probconserv') needs a model with a variance "
                "head (a `log_variance(u)` method, e.g. dp.operators.JAWS); use "
                "method='hard' for a deterministic model."
            )

    def __call__(
        self, u: Field, t: ScalarLike = 0.0, *, key: PRNGKeyArray | None = None
    ) -> Field:
        out = apply_model(self.model, u, t, key)
        if out.shape != u.shape:
            raise ValueError(
                f"MassConserving needs an output shaped like the input {u.shape}, got "
                f"{out.shape}."
            )
        channels = u.shape[0]
        flat, flat_in = out.reshape(channels, -1), u.reshape(channels, -1)
        g = jnp.ones(flat.shape[-1], u.dtype)
        b = flat_in @ g
        if self.method == "hard":
            new, _ = HardProjection(g)(flat, None, b)
        else:
            variance = jnp.exp(self.model.log_variance(u)).reshape(1, -1)
            variance = jnp.broadcast_to(variance, flat.shape).astype(u.dtype)
            new, _ = ProbConserv(g)(flat, Diagonal(variance), b)
        return new.reshape(out.shape)
