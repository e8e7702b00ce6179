"""The abstract bases of the grid time steppers (STYLE rule 1: abstract or final)."""

import abc

import equinox as eqx

from .._custom_types import Array, Field, FieldLike, Float, Scalar, ScalarLike


class AbstractStepper(eqx.Module):
    """A time stepper on a uniform grid: `stepper(u, t=0.0) -> u_next`, one step of
    `dt` from the unbatched, channels-first state `u` `(C, *N)` at time `t` (read only
    by time-dependent forcing or boundary data).

    The grid is `num_spatial_dims` axes of `num_points` points over
    `[0, domain_extent)` (periodic) or `num_points` cells of `[0, domain_extent]`;
    `dt` is the step. `diffphys.solvers.rollout` advances the time by `dt`.
    """

    num_spatial_dims: eqx.AbstractVar[int]
    domain_extent: eqx.AbstractVar[float]
    num_points: eqx.AbstractVar[int]
    dt: eqx.AbstractVar[float]

    @abc.abstractmethod
    def __call__(self, u: FieldLike, t: ScalarLike = 0.0) -> Field:
        """One step from `u` at time `t`. An integer or boolean `u` is promoted to
        the default float dtype first (the rule of every stepper)."""

    def broken_promise(self, u: Field) -> str | None:
        """What the concrete state `u` breaks of the promises made at construction
        that the stability check relied on (a `max_speed` bound on `|u|`), in one
        sentence; None when it breaks none. `rollout` adds it to its blow-up
        message."""
        del u
        return None


class AbstractConservativeStepper(AbstractStepper):
    """A stepper in conservation form: the change of `mass(u)` over a step is what
    entered through the boundary, which `step` reports. `diffphys.solvers.mass_budget`
    accumulates it into the right-hand side `b(t)` of a mass constraint."""

    @abc.abstractmethod
    def mass(self, u: Field) -> Scalar:
        """The total mass of `u`."""

    @abc.abstractmethod
    def step(
        self, u: FieldLike, t: ScalarLike = 0.0
    ) -> tuple[Field, Float[Array, " b"]]:
        """One step. **Returns:** `(u_next, inflow)`: the mass that entered through
        each boundary over the step, so that `mass(u_next) - mass(u) ==
        inflow.sum()` to round-off."""

    def __call__(self, u: FieldLike, t: ScalarLike = 0.0) -> Field:
        return self.step(u, t)[0]
