import equinox as eqx
import jax.numpy as jnp

from ... import implicit
from ..._custom_types import Array, ArrayLike, Field
from ..._solution import Solution
from .._grid import check_state
from ..poisson import DiffusionOperator


class Darcy(eqx.Module):
    """Steady Darcy flow, `-∇·(a ∇u) = f` on `[0, L]²` with `u = 0` on the boundary:
    the pressure `u` of a porous medium of permeability `a` (the FNO paper's steady
    benchmark, Li et al. 2021, §5.2).

    Fields live on the `N × N` nodes `x_i = i L / (N − 1)`, boundary included (the
    FNO data's grid: 421, 211, 141, 85 points); `u` is zero on the boundary nodes.
    The interior is `DiffusionOperator` (the 5-point stencil, face coefficients the
    mean of the two nodes', second order for smooth `a`), solved by `PCG` with the
    Jacobi preconditioner through `dp.implicit.linear_solve`, so the gradient with
    respect to `a` (and `f`) is one adjoint solve, whatever PCG's iteration count.
    For the piecewise-constant `a` of the benchmark the scheme is first order near
    the jumps (as every node-centred scheme without interface fitting).

    **Arguments:**

    - `num_points`: `N`, nodes per axis, boundary included (>= 4).
    - `domain_extent`: `L`.
    - `source`: `f`, a scalar (the FNO data's `f = 1`; PDEBench's `β`) or a field
        `(1, N, N)`; an array field (differentiable).
    - `rtol`, `atol`, `max_steps`: PCG's stopping rule `‖b − A u‖ <= rtol ‖b‖ + atol`
        (defaults 1e-10 and 0 in float64, 1e-6 in float32; at most `4 N²`
        iterations).

    **Call:** `darcy(a) -> u`, `a` of shape `(1, N, N)`, positive, at every node
    (the boundary nodes' values are not used: a face next to the boundary takes
    the interior node's `a`);
    `darcy.solve(a, throw=True) -> Solution` keeps PCG's statistics.
    """

    num_points: int = eqx.field(static=True)
    domain_extent: float = eqx.field(static=True)
    rtol: float | None = eqx.field(static=True)
    atol: float = eqx.field(static=True)
    max_steps: int | None = eqx.field(static=True)
    source: Array

    def __init__(
        self,
        num_points: int,
        domain_extent: float = 1.0,
        *,
        source: ArrayLike = 1.0,
        rtol: float | None = None,
        atol: float = 0.0,
        max_steps: int | None = None,
    ):
        if num_points < 4:
            raise ValueError(f"Darcy: `num_points` must be >= 4, got {num_points}.")
        if not domain_extent > 0:
            raise ValueError(
                f"Darcy: `domain_extent` must be > 0, got {domain_extent}."
            )
        source = jnp.asarray(source)
        if source.shape not in ((), (1, num_points, num_points)):
            raise ValueError(
                f"Darcy: `source` must be a scalar or a field of shape (1, "
                f"{num_points}, {num_points}), got shape {source.shape}."
            )
        self.num_points = num_points
        self.domain_extent = float(domain_extent)
        self.rtol, self.atol, self.max_steps = rtol, atol, max_steps
        self.source = source

    def solve(self, a: ArrayLike, *, throw: bool = True) -> Solution:
        """Solve for `u` `(1, N, N)` (zero on the boundary nodes)."""
        a = check_state(a, (1, self.num_points, self.num_points))
        a = eqx.error_if(
            a,
            ~jnp.all(a > 0),
            "Darcy: the coefficient `a` must be > 0 everywhere (a permeability).",
        )
        interior = a[0, 1:-1, 1:-1]
        operator = DiffusionOperator(interior, self.domain_extent)
        f = jnp.broadcast_to(self.source, a.shape)[0, 1:-1, 1:-1].astype(a.dtype)
        single = a.dtype == jnp.float32
        rtol = self.rtol if self.rtol is not None else (1e-6 if single else 1e-10)
        solver = implicit.PCG(
            implicit.Jacobi(operator.diagonal()),
            rtol=rtol,
            atol=self.atol,
            max_steps=self.max_steps or 4 * self.num_points**2,
        )
        sol = implicit.linear_solve(operator, f, solver, throw=throw)
        u = jnp.pad(sol.value, 1)[None]
        return eqx.tree_at(lambda s: s.value, sol, u)

    def __call__(self, a: ArrayLike) -> Field:
        return self.solve(a).value
