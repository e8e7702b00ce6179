import abc
from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import equinox.internal as eqxi
import jax.lax as lax
import lineax as lx
import optimistix as optx
from jaxtyping import PyTree


class AbstractAdjoint(eqx.Module):
    """How the layers of `diffphys.implicit` are differentiated.

    Each layer states a residual `F(y, θ) = 0` whose root is its output, runs its
    iteration in a while loop of kind `loop_kind`, and hands both to `apply`.
    """

    @property
    @abc.abstractmethod
    def loop_kind(self) -> Literal["lax", "scan", "bounded"]:
        """The kind of loop the solvers iterate in (see `while_loop`)."""

    @abc.abstractmethod
    def apply(
        self,
        primal_fn: Callable[[Any], tuple[PyTree, Any]],
        rewrite_fn: Callable[[PyTree, Any, Any], PyTree],
        inputs: Any,
        tags: frozenset[object],
        default_linear_solver: lx.AbstractLinearSolver,
    ) -> tuple[PyTree, Any]:
        """Returns `primal_fn(inputs)`, with derivatives defined by this adjoint.

        `rewrite_fn(root, aux, inputs)` is the residual, zero at the root;
        `default_linear_solver` solves systems with its Jacobian when the adjoint
        does not name its own.
        """


class ImplicitAdjoint(AbstractAdjoint):
    """Differentiate by the implicit function theorem (the default).

    At a root of `F(y, θ) = 0`, `dy/dθ = -(∂F/∂y)^{-1} ∂F/∂θ`. A JVP costs one linear
    solve with `∂F/∂y` and a VJP one solve with its transpose, whatever the number of
    forward iterations, and no iterate is stored. Forward mode, reverse mode and
    `vmap` are supported.

    The derivative is exact at the exact root, so it is as accurate as the forward
    solve converged: use tight tolerances where gradients matter.

    **Arguments:**

    - `linear_solver`: the lineax solver for the adjoint system. `None` (default) uses
        the forward solver's (CG/PCG for `linear_solve`, Newton's inner solver for
        `root_find`, GMRES for `fixed_point`).

    Built on `optimistix.internal.implicit_jvp`.
    """

    linear_solver: lx.AbstractLinearSolver | None = None

    @property
    def loop_kind(self):
        return "lax"

    def apply(self, primal_fn, rewrite_fn, inputs, tags, default_linear_solver):
        solver = (
            default_linear_solver if self.linear_solver is None else self.linear_solver
        )
        return optx.internal.implicit_jvp(primal_fn, rewrite_fn, inputs, tags, solver)


class UnrolledAdjoint(AbstractAdjoint):
    """Differentiate through every iteration of the solver (for comparison).

    The iteration runs in a loop of `max_steps` steps (steps after convergence are
    skipped by a `lax.cond`) that supports forward and reverse mode.

    **Arguments:**

    - `checkpointed`: `False` (default) is plain backpropagation: reverse mode stores
        every iterate, so memory grows linearly with `max_steps`. `True` uses
        equinox's bounded while loop, which checkpoints nested scans and recomputes
        iterates on the way back: memory grows about logarithmically, time more.

    Use it to check `ImplicitAdjoint`, or to study the derivative of a solve stopped
    early on purpose. Unrolling CG far past round-off convergence divides by a
    vanishing `r·z` in the backward pass (NaN gradients): keep `rtol > 0`.
    """

    checkpointed: bool = False

    @property
    def loop_kind(self):
        return "bounded" if self.checkpointed else "scan"

    def apply(self, primal_fn, rewrite_fn, inputs, tags, default_linear_solver):
        del rewrite_fn, tags, default_linear_solver
        return primal_fn(inputs)


def while_loop(cond_fun, body_fun, init_val, *, max_steps: int, kind: str):
    """The solvers' loop. `"lax"`: `lax.while_loop` (not reverse-differentiable; used
    inside the implicit layer). `"scan"`: a scan of `max_steps` conditional steps,
    storing every iterate for reverse mode. `"bounded"`: equinox's checkpointed
    bounded loop."""
    if kind == "scan":

        def step(carry, _):
            return lax.cond(cond_fun(carry), body_fun, lambda c: c, carry), None

        return lax.scan(step, init_val, length=max_steps)[0]
    return eqxi.while_loop(cond_fun, body_fun, init_val, max_steps=max_steps, kind=kind)


def check_adjoint(adjoint: Any) -> AbstractAdjoint:
    if not isinstance(adjoint, AbstractAdjoint):
        raise ValueError(
            "`adjoint` must be dp.implicit.ImplicitAdjoint() or "
            f"dp.implicit.UnrolledAdjoint(), got {type(adjoint).__name__}."
        )
    return adjoint
