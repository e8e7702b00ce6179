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

    Unknowns sit at the interior nodes `x_i = i h_a`, `i = 1..N_a`, of each axis
    `a` of the box `[0, L_a]`, with its own spacing `h_a = L_a / (N_a + 1)`; the
    boundary nodes hold `u = 0`. With face coefficients `κ_{i+1/2} = (κ_i +
    κ_{i+1}) / 2` (and `κ_i` on boundary faces) it is the standard 2d+1-point stencil

    `(A u)_i = Σ_a [κ_{i+1/2} q(u_i - u_{i+1}) + κ_{i-1/2} q(u_i - u_{i-1})] / h_a²`,

    second-order accurate, symmetric positive definite for `κ > 0` when the flux `q`
    is the identity. A monotone `flux` `q(g)` of the scaled difference `g = Δu / h`
    (applied as `h q(Δu / h)`) gives a nonlinear diffusion `-∇·(κ q(∇u))` whose
    Jacobian is still symmetric positive definite (it is the Hessian of a convex
    energy), so CG can solve its Newton systems.

    **Arguments:**

    - `kappa`: the diffusion coefficient at the unknowns, shape `(*N)`, `d = 1, 2, 3`.
    - `domain_extent`: the side `L` of the cube, or one length `L_a` per axis.
    - `flux`: optional elementwise `q`; `None` is the linear operator.

    Fields here are scalar and unchannelled, `(*N)`; `N_a` may differ by axis.
    """

    kappa: SpatialField
    domain_extent: float | tuple[float, ...] = eqx.field(static=True)
    flux: Callable | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        if jnp.ndim(self.kappa) not in (1, 2, 3):
            raise ValueError(
                "`kappa` must be a 1D, 2D or 3D grid of coefficient values, got shape "
                f"{jnp.shape(self.kappa)}."
            )
        lengths = self.domain_extent
        if isinstance(lengths, tuple) and len(lengths) != jnp.ndim(self.kappa):
            raise ValueError(
                f"`domain_extent` has {len(lengths)} lengths for a "
                f"{jnp.ndim(self.kappa)}D grid; give one per axis, or one number "
                "for a cube."
            )
        if not all(
            v > 0 for v in (lengths if isinstance(lengths, tuple) else (lengths,))
        ):
            raise ValueError(f"`domain_extent` must be > 0, got {lengths}.")

    @property
    def spacings(self) -> tuple[float, ...]:
        """The node spacing of each axis, `h_a = L_a / (N_a + 1)`."""
        shape = self.kappa.shape
        lengths = self.domain_extent
        if not isinstance(lengths, tuple):
            lengths = (lengths,) * len(shape)
        return tuple(
            float(length) / (n + 1) for length, n in zip(lengths, shape, strict=True)
        )

    @property
    def spacing(self) -> float:
        """The node spacing of a grid with the same spacing on every axis."""
        spacings = self.spacings
        if max(spacings) - min(spacings) > 1e-12 * max(spacings):
            raise ValueError(
                f"This grid's spacing differs by axis ({spacings}); use `.spacings`."
            )
        return spacings[0]

    def __call__(self, u: SpatialField) -> SpatialField:
        if jnp.shape(u) != jnp.shape(self.kappa):
            raise ValueError(
                f"u has shape {jnp.shape(u)} but the operator acts on fields of shape "
                f"{jnp.shape(self.kappa)} (the shape of kappa)."
            )
        spacings = self.spacings
        out = jnp.zeros_like(u)
        for axis, offset, k_face in self._faces():
            h = spacings[axis]
            diff = u - _shift(u, axis, offset)
            if self.flux is not None:
                diff = h * self.flux(diff / h)
            out = out + k_face * diff / h**2
        return out

    def diagonal(self) -> SpatialField:
        """The diagonal of the linear operator (for `dp.implicit.Jacobi`)."""
        spacings = self.spacings
        return sum(k_face / spacings[axis] ** 2 for axis, _, k_face in self._faces())

    def _faces(self):
        # (axis, offset, κ on the face between node i and node i + offset).
        for axis in range(self.kappa.ndim):
            for offset in (1, -1):
                k_face = 0.5 * (self.kappa + _shift(self.kappa, axis, offset))
                boundary = _boundary_face(self.kappa.shape, axis, offset)
                yield axis, offset, jnp.where(boundary, self.kappa, k_face)

    def grid(self) -> tuple[SpatialField, ...]:
        """Coordinates of the unknowns, one array per axis (`indexing="ij"`)."""
        axes = [
            h * jnp.arange(1, n + 1, dtype=self.kappa.dtype)
            for h, n in zip(self.spacings, self.kappa.shape, strict=True)
        ]
        return tuple(jnp.meshgrid(*axes, indexing="ij"))


def _boundary_face(shape, axis, offset):
    index = jnp.arange(shape[axis])
    edge = shape[axis] - 1 if offset == 1 else 0
    mask = index == edge
    return jnp.reshape(mask, [-1 if a == axis else 1 for a in range(len(shape))])
