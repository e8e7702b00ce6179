import abc
from collections.abc import Callable

import equinox as eqx
from jaxtyping import PRNGKeyArray

from .._custom_types import Field, OutField, ScalarLike


class AbstractOperator(eqx.Module):
    """A neural operator: `op(u, t=0.0, *, key=None) -> u_next` on an unbatched,
    channels-first field `(C, *N)`. The call protocol of the solvers' steppers
    (`dp.solvers.AbstractStepper`) with a keyword-only PRNG key: the time `t` may be
    ignored, so an operator stands wherever a stepper does (rollout, evaluation,
    training). Batch with `jax.vmap`."""

    @abc.abstractmethod
    def __call__(
        self, u: Field, t: ScalarLike = 0.0, *, key: PRNGKeyArray | None = None
    ) -> OutField:
        """One application at time `t`."""


def apply_model(
    model: Callable, u: Field, t: ScalarLike = 0.0, key: PRNGKeyArray | None = None
) -> Field:
    """Call `model` on `u`: an `AbstractOperator` with the time and key, anything
    else (a solver's stepper, a plain function) as `model(u)`."""
    if isinstance(model, AbstractOperator):
        return model(u, t, key=key)
    return model(u)
