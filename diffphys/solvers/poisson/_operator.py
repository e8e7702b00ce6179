from collections.abc import Callable

import equinox as eqx
import jax.lax as lax
import jax.numpy as jnp

from ..._custom_types import SpatialField


def _shift(u, axis, offset):
    # u at index i + offset along `axis`, zero outside (homogeneous Dirichlet).
    pad = [(0, 0)] * u.ndim
    pad[axis] = (1, 1)
    start = 1 + offset
    return lax.slice_in_dim(jnp.pad(u, pad), start, start + u.shape[axis], axis=axis)


class DiffusionOperator(eqx.Module):
    """The operator `u -> -∇·(κ ∇u)` on a uniform grid, zero Dirichlet boundaries.

    Unknowns sit at the interior nodes `x_i = i h`, `i = 1..N`, of `[0, L]^d` with
    `h = L / (N + 1)`; the boundary nodes hold `u = 0`. With face coefficients
    `κ_{i+1/2} = (κ_i + κ_{i+1}) / 2` (and `κ_i` on boundary faces) it is the
    standard 2d+1-point stencil

    `(A u)_i = Σ_axes [κ_{i+1/2} q(u_i - u_{i+1}) + κ_{i-1/2} q(u_i - u_{i-1})] / h²`,

    second-order accurate, symmetric positive definite for `κ > 0` when the flux `q`
    is the identity. A monotone `flux` `q(g)` of the scaled difference `g = Δu / h`
    (applied as `h q(Δu / h)`) gives a nonlinear diffusion `-∇·(κ q(∇u))` whose
    Jacobian is still symmetric positive definite (it is the Hessian of a convex
    energy), so CG can solve its Newton systems.

    **Arguments:**

    - `kappa`: the diffusion coefficient at the unknowns, shape `(*N)`, `d = 1, 2, 3`.
    - `domain_extent`: the side `L` of the cube.
    - `flux`: optional elementwise `q`; `None` is the linear operator.

    Fields here are scalar and unchannelled, `(*N)`.
    """

    kappa: SpatialField
    domain_extent: float = eqx.field(static=True)
    flux: Callable | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        if jnp.ndim(self.kappa) not in (1, 2, 3):
            raise ValueError(
                "`kappa` must be a 1D, 2D or 3D grid of coefficient values, got shape "
                f"{jnp.shape(self.kappa)}."
            )
        if self.domain_extent <= 0:
            raise ValueError(f"`domain_extent` must be > 0, got {self.domain_extent}.")

    @property
    def spacing(self) -> float:
        return self.domain_extent / (self.kappa.shape[0] + 1)

    def __call__(self, u: SpatialField) -> SpatialField:
        if jnp.shape(u) != jnp.shape(self.kappa):
            raise ValueError(
                f"u has shape {jnp.shape(u)} but the operator acts on fields of shape "
                f"{jnp.shape(self.kappa)} (the shape of kappa)."
            )
        h = self.spacing
        out = jnp.zeros_like(u)
        for axis, offset, k_face in self._faces():
            diff = u - _shift(u, axis, offset)
            if self.flux is not None:
                diff = h * self.flux(diff / h)
            out = out + k_face * diff
        return out / h**2

    def diagonal(self) -> SpatialField:
        """The diagonal of the linear operator (for `dp.implicit.Jacobi`)."""
        total = sum(k_face for _, _, k_face in self._faces())
        return total / self.spacing**2

    def _faces(self):
        # (axis, offset, κ on the face between node i and node i + offset).
        for axis in range(self.kappa.ndim):
            for offset in (1, -1):
                k_face = 0.5 * (self.kappa + _shift(self.kappa, axis, offset))
                boundary = _boundary_face(self.kappa.shape, axis, offset)
                yield axis, offset, jnp.where(boundary, self.kappa, k_face)

    def grid(self) -> tuple[SpatialField, ...]:
        """Coordinates of the unknowns, one array per axis (`indexing="ij"`)."""
        h = self.spacing
        axes = [
            h * jnp.arange(1, n + 1, dtype=self.kappa.dtype) for n in self.kappa.shape
        ]
        return tuple(jnp.meshgrid(*axes, indexing="ij"))


def _boundary_face(shape, axis, offset):
    index = jnp.arange(shape[axis])
    edge = shape[axis] - 1 if offset == 1 else 0
    mask = index == edge
    return jnp.reshape(mask, [-1 if a == axis else 1 for a in range(len(shape))])
