import dataclasses
import importlib
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import lineax as lx

from .._solution import RESULTS
from ._misc import tree_sub, two_norm


_ROOT_FIELDS = ("fun", "optimality_fun")
_FIXED_POINT_FIELDS = ("fixed_point_fun",)


class Jaxopt(eqx.Module):
    """A jaxopt solver as the inner solver of `root_find` or `fixed_point`.

    diffphys runs the jaxopt solver for the forward solve (with jaxopt's own implicit
    differentiation switched off) and differentiates it with its own adjoint, so
    `ImplicitAdjoint` and `UnrolledAdjoint` behave as with the native solvers.
    jaxopt is imported only here, when a solver is given by name, and only then.

    **Arguments:**

    - `solver`: a jaxopt solver class, or its name in the `jaxopt` namespace:
        root finders (`"Broyden"`, `"Bisection"`) for `root_find`, fixed-point solvers
        (`"FixedPointIteration"`, `"AndersonAcceleration"`) for `fixed_point`.
    - `linear_solver`: lineax solver of the adjoint system (default GMRES).
    - `**options`: keyword arguments of the jaxopt class (`maxiter`, `tol`, ...); the
        function argument is filled in by diffphys.

    Needs the `jaxopt` extra: `pip install 'diffphys[jaxopt]'`.
    """

    solver: Any = eqx.field(static=True)
    options: tuple[tuple[str, Any], ...] = eqx.field(static=True)
    linear_solver: lx.AbstractLinearSolver

    def __init__(
        self,
        solver: Any,
        *,
        linear_solver: lx.AbstractLinearSolver | None = None,
        **options: Any,
    ):
        if "implicit_diff" in options or "unroll" in options:
            raise ValueError(
                "Do not set jaxopt's `implicit_diff`/`unroll`: choose the derivative "
                "with `adjoint=` (ImplicitAdjoint or UnrolledAdjoint) instead."
            )
        self.solver = solver
        self.options = tuple(sorted(options.items()))
        tol = float(options.get("tol", 1e-6))
        self.linear_solver = (
            lx.GMRES(rtol=tol, atol=tol, restart=20)
            if linear_solver is None
            else linear_solver
        )

    def _cls(self):
        if isinstance(self.solver, str):
            try:
                jaxopt = importlib.import_module("jaxopt")
            except ImportError as e:
                raise ValueError(
                    "dp.implicit.Jaxopt needs jaxopt: pip install 'diffphys[jaxopt]'."
                ) from e
            if not hasattr(jaxopt, self.solver):
                raise ValueError(f"jaxopt has no solver named {self.solver!r}.")
            return getattr(jaxopt, self.solver)
        return self.solver

    def run(self, fn, y0, args, kind: str, *, fixed_point: bool):
        """Run the jaxopt solver; returns `(y, result, stats)`."""
        cls = self._cls()
        if not dataclasses.is_dataclass(cls):
            raise ValueError(f"{cls!r} is not a jaxopt solver class.")
        fields = {f.name for f in dataclasses.fields(cls)}
        wanted = _FIXED_POINT_FIELDS if fixed_point else _ROOT_FIELDS
        other = _ROOT_FIELDS if fixed_point else _FIXED_POINT_FIELDS
        fun_field = next((name for name in wanted if name in fields), None)
        if fun_field is None:
            role, layer = (
                ("fixed-point", "fixed_point") if fixed_point else ("root", "root_find")
            )
            hint = (
                " It is a solver for the other layer."
                if any(name in fields for name in other)
                else ""
            )
            raise ValueError(
                f"{cls.__name__} is not a jaxopt {role} solver, so it cannot serve "
                f"{layer}.{hint}"
            )
        kwargs = dict(self.options)
        kwargs[fun_field] = fn
        if "implicit_diff" in fields:
            kwargs["implicit_diff"] = False
        if kind != "lax":
            if "unroll" not in fields:
                raise ValueError(
                    f"jaxopt's {cls.__name__} cannot be unrolled; use ImplicitAdjoint."
                )
            kwargs["unroll"] = True
        instance = cls(**kwargs)
        y, state = instance.run(y0, args)
        residual = tree_sub(fn(y, args), y) if fixed_point else fn(y, args)
        error = getattr(state, "error", two_norm(residual))
        ok = jnp.isfinite(error) & (error <= instance.tol)
        result = RESULTS.where(
            ok,
            RESULTS.successful,
            RESULTS.where(
                jnp.isfinite(error),
                RESULTS.nonlinear_max_steps_reached,
                RESULTS.nonfinite_value,
            ),
        )
        stats = {
            "num_steps": jnp.asarray(state.iter_num),
            "max_steps": getattr(instance, "maxiter", None),
            "residual_norm": two_norm(residual),
        }
        return y, result, stats
