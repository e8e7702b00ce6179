import abc
from collections.abc import Callable
from typing import Any, no_type_check

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import lineax as lx
from jaxtyping import Array, Float, PyTree

from .._solution import RESULTS, Solution
from ._adjoint import AbstractAdjoint, check_adjoint, ImplicitAdjoint, while_loop
from ._misc import (
    check_same_structure,
    finish,
    stop_gradient,
    structure_of,
    tree_all_finite,
    tree_axpy,
    tree_dot,
    tree_sub,
    two_norm,
)


_SPD_TAGS = frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})


def _check_tolerances(rtol, atol, max_steps):
    if rtol < 0 or atol < 0:
        raise ValueError(f"Tolerances must be >= 0, got rtol={rtol}, atol={atol}.")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"`max_steps` must be a positive integer, got {max_steps}.")


def _identity(r):
    return r


class Jacobi(eqx.Module):
    """Jacobi (diagonal) preconditioner `r -> r / diag(A)` for `PCG`.

    **Arguments:**

    - `diagonal`: the diagonal of `A`, a PyTree shaped like the right-hand side, all
        entries positive. Matrix-free operators usually know it cheaply (for example
        `dp.solvers.poisson.DiffusionOperator.diagonal()`); for a small explicit
        operator use `lineax.diagonal(operator)`.
    """

    diagonal: PyTree[Array]

    def __call__(self, r: PyTree[Array]) -> PyTree[Array]:
        return jtu.tree_map(jnp.divide, r, self.diagonal)


class AbstractIterativeSolver(lx.AbstractLinearSolver):
    """A matrix-free iterative solver for `dp.implicit.linear_solve` (CG, PCG,
    `dp.solvers.poisson.DCDM`).

    A subclass defines `iterate(matvec, b, kind, project)`, which runs from `x0 = 0`
    in a loop of `kind` (see `dp.implicit.ImplicitAdjoint.loop_kind`) and returns
    `(x, result, stats)`; `project` is the operator's projection onto its unknowns
    (the identity unless the operator defines `project`), applied to every search
    direction. The class is also a lineax solver, so it serves as the adjoint solver
    of `ImplicitAdjoint` and inside `lineax.linear_solve`. Its operator is assumed
    symmetric positive (semi)definite.
    """

    @abc.abstractmethod
    def iterate(
        self,
        matvec: Callable[[PyTree], PyTree],
        b: PyTree[Array],
        kind: str = "lax",
        project: Callable[[PyTree], PyTree] = _identity,
    ) -> tuple[PyTree[Array], RESULTS, dict[str, Any]]:
        """Solve `A x = b` from `x0 = 0`; returns `(x, result, stats)` with
        `stats["num_steps"]`, `stats["max_steps"]` and `stats["residual_norm"]`."""

    # lineax interface.
    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        del options
        if operator.in_structure() != operator.out_structure():
            raise ValueError(
                f"{type(self).__name__} needs a square operator (input and output "
                "structures equal)."
            )
        return lx.linearise(operator)

    def compute(self, state, vector, options):
        del options
        x, result, stats = self.iterate(state.mv, vector)
        lx_result = lx.RESULTS.where(
            result == RESULTS.successful,
            lx.RESULTS.successful,
            lx.RESULTS.where(
                result == RESULTS.max_steps_reached,
                lx.RESULTS.max_steps_reached,
                lx.RESULTS.where(
                    result == RESULTS.nonfinite_value,
                    lx.RESULTS.nonfinite_input,
                    lx.RESULTS.breakdown,
                ),
            ),
        )
        return x, lx_result, stats

    def transpose(self, state, options):
        return state.transpose(), options

    def conj(self, state, options):
        return lx.conj(state), options

    def assume_full_rank(self):
        return True


class _ConjugateGradient(AbstractIterativeSolver):
    # Shared by CG and PCG.
    rtol: eqx.AbstractVar[float]
    atol: eqx.AbstractVar[float]
    max_steps: eqx.AbstractVar[int | None]
    stabilise_every: eqx.AbstractVar[int | None]
    preconditioner: eqx.AbstractVar[Callable[[PyTree], PyTree]]
    record_history: eqx.AbstractVar[bool]

    def iterate(
        self,
        matvec: Callable[[PyTree], PyTree],
        b: PyTree[Array],
        kind: str = "lax",
        project: Callable[[PyTree], PyTree] = _identity,
    ) -> tuple[PyTree[Array], RESULTS, dict[str, Any]]:
        """Run (P)CG from `x0 = 0` in a loop of `kind`; returns `(x, result, stats)`."""
        size = sum(leaf.size for leaf in jtu.tree_leaves(b))
        max_steps = 10 * size if self.max_steps is None else self.max_steps

        def precondition(r):
            return project(self.preconditioner(r))

        b_norm = two_norm(b)
        tol = self.rtol * b_norm + self.atol
        x0 = jtu.tree_map(jnp.zeros_like, b)
        z0 = precondition(b)
        history = residual_history(b_norm, max_steps, self.record_history)
        init = (x0, b, z0, tree_dot(b, z0), b_norm, jnp.array(0), jnp.array(False))
        init = init + (history,)

        def cond_fun(carry):
            _, _, _, _, r_norm, _, indefinite, _ = carry
            return (r_norm > tol) & jnp.isfinite(r_norm) & ~indefinite

        def body_fun(carry):
            x, r, p, rz, _, step, _, history = carry
            ap = matvec(p)
            pap = tree_dot(p, ap)
            indefinite = pap <= 0
            alpha = jnp.where(indefinite, 0.0, rz / jnp.where(indefinite, 1.0, pap))
            x = tree_axpy(alpha, p, x)
            if self.stabilise_every is None:
                r = tree_axpy(-alpha, ap, r)
            else:
                r = jax.lax.cond(
                    (step + 1) % self.stabilise_every == 0,
                    lambda: tree_sub(b, matvec(x)),
                    lambda: tree_axpy(-alpha, ap, r),
                )
            z = precondition(r)
            rz_new = tree_dot(r, z)
            p = tree_axpy(rz_new / rz, p, z)
            r_norm = two_norm(r)
            history = record(history, step + 1, r_norm)
            return x, r, p, rz_new, r_norm, step + 1, indefinite, history

        x, _, _, _, r_norm, num_steps, indefinite, history = while_loop(
            cond_fun, body_fun, init, max_steps=max_steps, kind=kind
        )
        true_norm = two_norm(tree_sub(b, matvec(x)))
        finite = jnp.isfinite(true_norm) & tree_all_finite(x)
        result = RESULTS.where(
            ~finite,
            RESULTS.nonfinite_value,
            RESULTS.where(
                indefinite,
                RESULTS.not_positive_definite,
                RESULTS.where(
                    r_norm > tol, RESULTS.max_steps_reached, RESULTS.successful
                ),
            ),
        )
        stats = {
            "num_steps": num_steps,
            "max_steps": max_steps,
            "residual_norm": true_norm,
        }
        if self.record_history:
            stats["residual_history"] = history
        return x, result, stats


def residual_history(b_norm, max_steps: int, enabled: bool):
    """The buffer of `record_history`: `‖b‖` then NaN, `max_steps + 1` long (one
    entry when disabled, so that the loop's carry keeps one structure)."""
    size = max_steps + 1 if enabled else 1
    return jnp.full(size, jnp.nan, b_norm.dtype).at[0].set(b_norm)


def record(history, step, r_norm):
    """Store `‖r_step‖` (a no-op on the one-entry buffer of a disabled history)."""
    if history.shape[0] == 1:
        return history
    return history.at[step].set(r_norm)


class CG(_ConjugateGradient):
    """Conjugate gradients for symmetric positive (semi)definite systems `A x = b`.

    Starts from `x0 = 0` and stops at the first iterate with

    `||b - A x||_2 <= rtol * ||b||_2 + atol`

    (2-norms over the whole PyTree, of the recursively updated residual; the returned
    `stats["residual_norm"]` is recomputed as `||b - A x||_2`). This differs from
    `scipy.sparse.linalg.cg` (`max(rtol ||b||, atol)`) and from `lineax.CG`
    (elementwise scaled max-norm). For a semidefinite `A` (e.g. a pure-Neumann
    Laplacian) `b` must lie in the range of `A`.

    **Arguments:**

    - `rtol`, `atol`: relative and absolute tolerances, as above.
    - `max_steps`: iteration cap (static). `None` means `10 * size`, as SciPy.
    - `stabilise_every`: recompute the residual from scratch every so many steps (one
        extra matvec then), against drift in long float32 solves. `None`: never.
    - `record_history`: also return `stats["residual_history"]`, the residual norm
        after each step (`‖b‖` first, NaN after the last step), `max_steps + 1`
        long (static).

    Reference: Hestenes & Stiefel (1952); Saad, *Iterative Methods for Sparse Linear
    Systems*, Alg. 6.18.
    """

    rtol: float = 1e-6
    atol: float = 0.0
    max_steps: int | None = None
    stabilise_every: int | None = None
    preconditioner: Callable[[PyTree], PyTree] = eqx.field(
        default=_identity, static=True, repr=False
    )
    record_history: bool = eqx.field(default=False, static=True)

    def __check_init__(self):
        _check_tolerances(self.rtol, self.atol, self.max_steps)


class PCG(_ConjugateGradient):
    """Preconditioned conjugate gradients: `CG` with `z = M^{-1} r`.

    The stopping rule is that of `CG`, on the unpreconditioned residual:
    `||b - A x||_2 <= rtol * ||b||_2 + atol`.

    **Arguments:**

    - `preconditioner`: a callable `r -> M^{-1} r` with `M` symmetric positive
        definite, for example `Jacobi(diagonal)`. It may hold arrays; no gradient flows
        through it (it changes the path, not the solution).
    - `rtol`, `atol`, `max_steps`, `stabilise_every`, `record_history`: as for `CG`.

    Reference: Saad, *Iterative Methods for Sparse Linear Systems*, Alg. 9.1.
    """

    preconditioner: Callable[[PyTree], PyTree]
    rtol: float = 1e-6
    atol: float = 0.0
    max_steps: int | None = None
    stabilise_every: int | None = None
    record_history: bool = eqx.field(default=False, static=True)

    def __check_init__(self):
        _check_tolerances(self.rtol, self.atol, self.max_steps)
        if not callable(self.preconditioner):
            raise ValueError(
                "`PCG(preconditioner=...)` needs a callable r -> M^{-1} r, for example "
                "dp.implicit.Jacobi(diagonal)."
            )


def _as_operator(operator: Any, b_struct: PyTree, tags) -> lx.AbstractLinearOperator:
    if isinstance(operator, jax.Array):
        if operator.ndim != 2 or operator.shape[0] != operator.shape[1]:
            raise ValueError(
                f"The operator is not square: a matrix of shape {operator.shape}. "
                "linear_solve handles square (symmetric positive definite) systems."
            )
        operator = lx.MatrixLinearOperator(operator, tags)
    if isinstance(operator, lx.AbstractLinearOperator):
        if operator.in_structure() != operator.out_structure():
            raise ValueError(
                "The operator is not square: its input and output structures differ "
                f"({operator.in_structure()} vs {operator.out_structure()}). "
                "linear_solve handles square (symmetric positive definite) systems."
            )
        check_same_structure(
            operator.in_structure(),
            b_struct,
            "The operator's input structure does not match `b`; pass `b` with the "
            "shape the operator acts on.",
        )
        return operator
    if not callable(operator):
        raise ValueError(
            "`operator` must be a callable x -> A x, a lineax operator or a square "
            f"matrix, got {type(operator).__name__}."
        )
    out_struct = jax.eval_shape(operator, b_struct)
    check_same_structure(
        out_struct,
        b_struct,
        "The operator must map `b`'s shape to itself (a square system); check the "
        "operator or the shape of `b`.",
    )
    return lx.FunctionLinearOperator(operator, b_struct, tags=tags)


# Crosses optimistix's custom-JVP boundary, which needs a plain global function
# (no wrapper from a runtime type checker).
@no_type_check
def _linear_primal(inputs):
    operator, b, solver, kind, project = inputs
    if isinstance(solver, AbstractIterativeSolver):
        x, result, stats = solver.iterate(operator.mv, b, kind, project)
    else:
        sol = lx.linear_solve(operator, b, solver, throw=False)
        x, result = sol.value, RESULTS.promote(sol.result)
        stats = {
            "num_steps": sol.stats.get("num_steps", jnp.array(0)),
            "max_steps": sol.stats.get("max_steps"),
            "residual_norm": two_norm(tree_sub(b, operator.mv(x))),
        }
    return x, (result, stats)


@no_type_check
def _linear_rewrite(x, aux, inputs):
    del aux
    operator, b, _, _, _ = inputs
    return tree_sub(operator.mv(x), b)


def linear_solve(
    operator: Callable[[PyTree[Array]], PyTree[Array]]
    | lx.AbstractLinearOperator
    | Float[Array, "m n"],
    b: PyTree[Array],
    solver: lx.AbstractLinearSolver = CG(),
    *,
    adjoint: AbstractAdjoint = ImplicitAdjoint(),
    throw: bool = True,
) -> Solution:
    """Solve `A x = b` for a symmetric positive (semi)definite `A`, differentiably.

    **Arguments:**

    - `operator`: `A`, as a callable `x -> A x` (assumed symmetric positive
        semidefinite, and tagged so), a lineax operator, or a square matrix.
        Parameters it closes over (a diffusion coefficient, say) receive gradients.
        If it has a method `prepare_rhs(b)`, the solve uses `prepare_rhs(b)` as
        right-hand side; if it has `project(x)` (an orthogonal projection onto its
        unknowns, with `A = project ∘ A ∘ project`), every search direction and the
        solution are projected (`dp.solvers.poisson.FluidPoisson` has both).
    - `b`: the right-hand side, a PyTree of float arrays.
    - `solver`: `CG(...)` (default `CG(rtol=1e-6)`), `PCG(...)`,
        `dp.solvers.poisson.DCDM(...)`, or any lineax solver
        (e.g. `lineax.LU()` for small dense systems, with `ImplicitAdjoint` only).
    - `adjoint`: `ImplicitAdjoint()` (one adjoint linear solve per gradient) or
        `UnrolledAdjoint()` (backpropagate through the CG iterations).
    - `throw`: if `True` a failed solve raises an error saying what to change; if
        `False` read `solution.result`.

    **Returns:**

    A `Solution`: `.value` is `x`; `.stats` holds `num_steps`, `max_steps` and
    `residual_norm = ||b - A x||_2`.

    The stopping rule of CG/PCG is `||b - A x||_2 <= rtol ||b||_2 + atol`.
    """
    adjoint = check_adjoint(adjoint)
    if not isinstance(solver, lx.AbstractLinearSolver):
        raise ValueError(
            "`solver` must be a linear solver: dp.implicit.CG(...), "
            f"dp.implicit.PCG(...) or a lineax solver; got {type(solver).__name__}."
        )
    iterative = isinstance(solver, AbstractIterativeSolver)
    if adjoint.loop_kind != "lax" and not iterative:
        raise ValueError(
            "UnrolledAdjoint can only unroll dp.implicit.CG, PCG or another "
            "dp.implicit.AbstractIterativeSolver; use ImplicitAdjoint with "
            f"{type(solver).__name__}."
        )
    b_struct = structure_of(b, "b")
    # An operator with unknowns on part of its grid, or a null space, says how to
    # treat right-hand sides and directions (dp.solvers.poisson.FluidPoisson).
    project = getattr(operator, "project", None)
    prepare_rhs = getattr(operator, "prepare_rhs", None)
    tags = _SPD_TAGS if iterative else frozenset()
    operator = _as_operator(operator, b_struct, tags)
    if prepare_rhs is not None:
        b = prepare_rhs(b)
    solver = stop_gradient(solver)
    inputs = (operator, b, solver, adjoint.loop_kind, project or _identity)
    x, (result, stats) = adjoint.apply(
        _linear_primal, _linear_rewrite, inputs, tags, solver
    )
    if project is not None:
        # Outside the implicit layer, so that tangents and cotangents of `x` are
        # projected too and the adjoint system is solvable.
        x = project(x)
    return finish(x, result, stats, throw)
