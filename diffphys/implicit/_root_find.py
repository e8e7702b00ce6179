import abc
from collections.abc import Callable
from typing import Any, no_type_check

import equinox as eqx
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, PyTree

from .._solution import RESULTS, Solution
from ._adjoint import AbstractAdjoint, check_adjoint, ImplicitAdjoint, while_loop
from ._jaxopt import Jaxopt
from ._linear_solve import AbstractIterativeSolver
from ._misc import (
    check_residual_fn,
    finish,
    stop_gradient,
    strongly_typed,
    tree_axpy,
    tree_neg,
    two_norm,
)


class AbstractRootFinder(eqx.Module):
    """A root finder for `dp.implicit.root_find` (`Newton`, the contact solver's
    `dp.solvers.contact.InteriorPoint`).

    A subclass defines `run(fn, y0, args, tags, kind)`, which iterates from `y0` in a
    loop of `kind` (see `dp.implicit.ImplicitAdjoint.loop_kind`) and returns
    `(y, result, stats)` with `stats["num_steps"]`, `stats["max_steps"]` and
    `stats["residual_norm"]`, and a field `linear_solver` (a lineax solver) that
    `ImplicitAdjoint` uses for the adjoint system `(∂F/∂y)ᵀ λ = ȳ`.
    """

    linear_solver: eqx.AbstractVar[lx.AbstractLinearSolver]

    @abc.abstractmethod
    def run(
        self,
        fn: Callable[[PyTree[Array], Any], PyTree[Array]],
        y0: PyTree[Array],
        args: Any,
        tags: frozenset[object],
        kind: str,
    ) -> tuple[PyTree[Array], RESULTS, dict[str, Any]]:
        """Find a root of `fn(·, args)` from `y0`; returns `(y, result, stats)`."""


class Newton(AbstractRootFinder):
    """Damped Newton's method with a backtracking (Armijo) line search.

    Each step solves `J(y_k) d = -F(y_k)` matrix-free (the Jacobian is applied by JVPs
    through `lineax.JacobianLinearOperator`) with `linear_solver`, then takes the
    largest `α ∈ {1, 1/2, 1/4, ...}` with

    `||F(y_k + α d)||² <= (1 - 2 c α) ||F(y_k)||²`  (Armijo on `½||F||²`, `c = armijo`).

    It stops at the first iterate with `||F(y)||_2 <= atol + rtol ||F(y_0)||_2`
    (Kelley's rule). Unconverged, it reports `newton_linear_solve_failed` when the
    inner linear solve of its last step failed (the likely cause),
    `line_search_failed` when no step decreases the residual and
    `nonlinear_max_steps_reached` after `max_steps`.

    **Arguments:**

    - `rtol`, `atol`: tolerances of the stopping rule above.
    - `max_steps`: Newton iterations at most (static).
    - `linear_solver`: solver of the Newton systems (and, by default, of the adjoint
        system): `dp.implicit.CG(...)`/`PCG(...)` when the Jacobian is symmetric
        positive definite (pass `tags` to `root_find`), `lineax.GMRES(...)` otherwise
        (the default, `GMRES(rtol=rtol, atol=atol, restart=20)`), `lineax.LU()` for
        small dense systems.
    - `max_backtracks`: step halvings at most per iteration.
    - `armijo`: the sufficient-decrease constant `c`.

    Reference: C. T. Kelley, *Solving Nonlinear Equations with Newton's Method*
    (SIAM, 2003), ch. 1.6 and 1.7.
    """

    rtol: float
    atol: float
    max_steps: int
    linear_solver: lx.AbstractLinearSolver
    max_backtracks: int
    armijo: float

    def __init__(
        self,
        rtol: float = 1e-6,
        atol: float = 0.0,
        max_steps: int = 50,
        linear_solver: lx.AbstractLinearSolver | None = None,
        max_backtracks: int = 20,
        armijo: float = 1e-4,
    ):
        if rtol < 0 or atol < 0 or (rtol == 0 and atol == 0):
            raise ValueError(
                "Newton needs rtol >= 0 and atol >= 0, not both zero; got "
                f"rtol={rtol}, atol={atol}."
            )
        if max_steps < 1 or max_backtracks < 0 or not 0 < armijo < 0.5:
            raise ValueError(
                "Newton needs max_steps >= 1, max_backtracks >= 0 and 0 < armijo < 0.5."
            )
        if linear_solver is None:
            linear_solver = lx.GMRES(rtol=max(rtol, 1e-12), atol=atol, restart=20)
        if not isinstance(linear_solver, lx.AbstractLinearSolver):
            raise ValueError(
                "Newton's `linear_solver` must be dp.implicit.CG/PCG or a lineax "
                f"solver, got {type(linear_solver).__name__}."
            )
        self.rtol = rtol
        self.atol = atol
        self.max_steps = max_steps
        self.linear_solver = linear_solver
        self.max_backtracks = max_backtracks
        self.armijo = armijo

    def run(self, fn, y0, args, tags, kind):
        """Iterate from `y0`; returns `(y, result, stats)`."""
        f0 = fn(y0, args)
        norm0 = two_norm(f0)
        tol = self.atol + self.rtol * norm0

        def cond_fun(carry):
            _, _, f_norm, _, _, failed, _ = carry
            return (f_norm > tol) & jnp.isfinite(f_norm) & ~failed

        def body_fun(carry):
            y, f, _, step, backtracks, _, _ = carry
            # Linearised once per step: each Krylov matvec is then only the linear part.
            jac = lx.linearise(lx.JacobianLinearOperator(fn, y, args, tags=tags))
            if isinstance(self.linear_solver, AbstractIterativeSolver):
                d, inner, _ = self.linear_solver.iterate(jac.mv, tree_neg(f), kind)
            else:
                sol = lx.linear_solve(jac, tree_neg(f), self.linear_solver, throw=False)
                d, inner = sol.value, RESULTS.promote(sol.result)
            alpha, num_halvings, decreased = self._line_search(fn, y, d, f, args)
            # A rejected step is not taken: the solve stops at the best iterate.
            y = tree_axpy(jnp.where(decreased, alpha, 0.0), d, y)
            f = fn(y, args)
            inner_failed = inner != RESULTS.successful
            return (
                y,
                f,
                two_norm(f),
                step + 1,
                backtracks + num_halvings,
                ~decreased,
                inner_failed,
            )

        false = jnp.array(False)
        init = (y0, f0, norm0, jnp.array(0), jnp.array(0), false, false)
        y, f, f_norm, num_steps, backtracks, failed, inner_failed = while_loop(
            cond_fun, body_fun, init, max_steps=self.max_steps, kind=kind
        )
        # An inexact inner solve is normal in a converging Newton iteration; it is
        # the cause to report only when Newton itself did not converge.
        unconverged = RESULTS.where(
            inner_failed,
            RESULTS.newton_linear_solve_failed,
            RESULTS.where(
                failed,
                RESULTS.line_search_failed,
                RESULTS.nonlinear_max_steps_reached,
            ),
        )
        result = RESULTS.where(
            ~jnp.isfinite(f_norm),
            RESULTS.nonfinite_value,
            RESULTS.where(f_norm <= tol, RESULTS.successful, unconverged),
        )
        stats = {
            "num_steps": num_steps,
            "max_steps": self.max_steps,
            "residual_norm": f_norm,
            "num_backtracks": backtracks,
        }
        return y, result, stats

    def _line_search(self, fn, y, d, f, args):
        # The step length is piecewise constant in the inputs (and in parameters `fn`
        # closes over): no gradient through it.
        fn, y, d, f, args = stop_gradient((fn, y, d, f, args))
        phi0 = two_norm(f) ** 2

        def trial(alpha):
            return two_norm(fn(tree_axpy(alpha, d, y), args)) ** 2

        def accepted(alpha, phi):
            return jnp.isfinite(phi) & (phi <= (1 - 2 * self.armijo * alpha) * phi0)

        def cond_fun(carry):
            alpha, phi, k = carry
            return ~accepted(alpha, phi) & (k < self.max_backtracks)

        def body_fun(carry):
            alpha, _, k = carry
            alpha = alpha / 2
            return alpha, trial(alpha), k + 1

        one = jnp.ones((), phi0.dtype)
        alpha, phi, k = eqx.internal.while_loop(
            cond_fun, body_fun, (one, trial(one), jnp.array(0)), kind="lax"
        )
        return alpha, k, accepted(alpha, phi)


# Crosses optimistix's custom-JVP boundary, which needs a plain global function
# (no wrapper from a runtime type checker).
@no_type_check
def _root_primal(inputs):
    fn, y0, args, solver, tags, kind = inputs
    if isinstance(solver, Jaxopt):
        y, result, stats = solver.run(fn, y0, args, kind, fixed_point=False)
    else:
        y, result, stats = solver.run(fn, y0, args, tags, kind)
    return y, (result, stats)


@no_type_check
def _root_rewrite(y, aux, inputs):
    del aux
    fn, _, args, _, _, _ = inputs
    return fn(y, args)


def root_find(
    fn: Callable[[PyTree[Array], Any], PyTree[Array]],
    y0: PyTree[Array],
    args: Any = None,
    solver: AbstractRootFinder | Jaxopt = Newton(),
    *,
    adjoint: AbstractAdjoint = ImplicitAdjoint(),
    tags: frozenset[object] = frozenset(),
    throw: bool = True,
) -> Solution:
    """Find `y` with `fn(y, args) = 0`, differentiably in `args` (and `y0`-free).

    **Arguments:**

    - `fn`: the residual `fn(y, args) -> F`, with `F` shaped like `y` (a square
        system). Gradients flow to `args` and to arrays `fn` closes over.
    - `y0`: initial guess, a PyTree of float arrays.
    - `args`: anything `fn` needs.
    - `solver`: `Newton(...)` (default), any `AbstractRootFinder`, or `Jaxopt(...)`
        wrapping a jaxopt root finder (e.g. `Jaxopt("Broyden", tol=1e-10)`).
    - `adjoint`: `ImplicitAdjoint()` (one adjoint solve with `∂F/∂y` per gradient) or
        `UnrolledAdjoint()` (backpropagate through the Newton and inner CG iterations).
    - `tags`: lineax tags of the Jacobian `∂F/∂y`, e.g.
        `frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})` when it is SPD,
        which CG needs and which makes the adjoint solve cheaper.
    - `throw`: raise on failure (message says what to change), or report in `.result`.

    **Returns:**

    A `Solution`; `.stats` holds `num_steps`, `max_steps`, `residual_norm = ||F(y)||_2`
    and, for Newton, `num_backtracks`.

    The gradient is `dy/dθ = -(∂F/∂y)^{-1} ∂F/∂θ` at the returned root, so it has
    no dependence on `y0`.
    """
    adjoint = check_adjoint(adjoint)
    if not isinstance(solver, AbstractRootFinder | Jaxopt):
        raise ValueError(
            "`solver` of root_find must be dp.implicit.Newton(...), another "
            "dp.implicit.AbstractRootFinder or dp.implicit.Jaxopt(...), got "
            f"{type(solver).__name__}."
        )
    check_residual_fn(fn, y0, args, "root_find", "a residual")
    y0, args = strongly_typed((y0, args))
    fn = eqx.filter_closure_convert(fn, y0, args)
    inputs = (fn, y0, args, stop_gradient(solver), tags, adjoint.loop_kind)
    y, (result, stats) = adjoint.apply(
        _root_primal, _root_rewrite, inputs, tags, solver.linear_solver
    )
    return finish(y, result, stats, throw)
