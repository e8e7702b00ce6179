from typing import Any

import equinox as eqx
import optimistix as optx
from jaxtyping import PyTree


class RESULTS(optx.RESULTS):  # pyright: ignore[reportGeneralTypeIssues]
    """Outcome of a solve. Extends optimistix's (and so lineax's) members.

    Compare with `sol.result == dp.RESULTS.successful`; the message of a member is
    `dp.RESULTS[sol.result]`.
    """

    successful = ""
    not_positive_definite = (
        "CG met a search direction p with p^T A p <= 0, so the operator is not "
        "symmetric positive definite. Check its sign (CG needs A, not -A), check that "
        "it is symmetric, or use a non-symmetric solver such as lineax.GMRES."
    )
    direction_breakdown = (
        "DCDM's search direction had q^T A q <= 0 after A-orthogonalisation: the "
        "network returned a direction in the operator's null space (or zero), or the "
        "operator is not symmetric positive definite. Check the network (the right "
        "dimension, trained weights) and the operator's sign and symmetry."
    )
    nonfinite_value = (
        "A NaN or inf appeared during the solve. Check the inputs (right-hand side, "
        "initial guess, parameters) for NaN/inf; if they are finite the iteration "
        "diverged: improve the initial guess, damp the iteration, or shrink the "
        "problem's stiffness (for example the time step)."
    )
    line_search_failed = (
        "Newton's backtracking line search could not decrease the residual norm. The "
        "Jacobian may be singular or inaccurate at the current iterate: try a better "
        "initial guess, a tighter inner linear solver (rtol), or more backtracking "
        "steps (`max_backtracks`)."
    )

    newton_linear_solve_failed = (
        "Newton stopped without converging, and the inner linear solve of its last "
        "step (J d = -F) had failed: the step direction was unreliable, which the "
        "line search then reports as no decrease. Give the inner solver more "
        "iterations (`max_steps`) or a tighter rtol; CG/PCG need a symmetric positive "
        "definite Jacobian (pass the right `tags`, or use lineax.GMRES or lineax.LU)."
    )


class Solution(eqx.Module):
    """The result of `linear_solve`, `root_find` or `fixed_point`.

    **Attributes:**

    - `value`: the solution, a PyTree of the structure of the input guess / right-hand
        side.
    - `result`: a `RESULTS` member; `RESULTS.successful` when the stopping rule was met.
    - `stats`: a dict with at least `num_steps` (iterations taken), `max_steps` and
        `residual_norm` (the 2-norm of the final residual, recomputed from the
        returned value).
    """

    value: PyTree
    result: RESULTS
    stats: dict[str, Any]
