import itertools
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..._custom_types import SpatialField
from ._fluid import FluidPoisson


def _blocks(u):
    # (N_1, ..., N_d) -> (N_1/2, 2, ..., N_d/2, 2).
    shape = []
    for n in u.shape:
        shape += [n // 2, 2]
    return u.reshape(shape)


_REACH = 2  # a Galerkin coarse operator couples cells up to two apart per axis
_WIDTH = 2 * _REACH + 1


def neighbour_at(u, axis, offset):
    pad = [(0, 0)] * u.ndim
    pad[axis] = (max(-offset, 0), max(offset, 0))
    padded = jnp.pad(u, pad)
    start = max(offset, 0)
    return jax.lax.slice_in_dim(padded, start, start + u.shape[axis], axis=axis)


def _offsets(d):
    return tuple(itertools.product(range(-_REACH, _REACH + 1), repeat=d))


class _Stencil(eqx.Module):
    # A coarse level: `(A u)_i = Σ_k coefficients[k, i] u_{i + offsets[k]}`, the
    # offsets of `_offsets`, zero beyond the box. A loop over the offsets, so that
    # the compiled program does not grow with their number (125 in 3D).
    coefficients: Float[Array, " K *N"]
    unknown: Array

    def __call__(self, u):
        d = u.ndim
        padded = jnp.pad(u, _REACH)
        offsets = jnp.asarray(_offsets(d)) + _REACH
        coefficients = self.coefficients.astype(u.dtype)

        def add(k, out):
            window = jax.lax.dynamic_slice(padded, tuple(offsets[k]), u.shape)
            return out + coefficients[k] * window

        return jax.lax.fori_loop(0, len(coefficients), add, jnp.zeros_like(u))

    def diagonal(self):
        diag = self.coefficients[len(self.coefficients) // 2]
        return jnp.where(diag > 0, diag, 1)


def _interpolate(c, fine_unknown, coarse_unknown):
    c = jnp.where(coarse_unknown, c, 0)
    for axis in range(c.ndim):
        c = _prolong_axis(c, axis)
    return jnp.where(fine_unknown, c, 0)


def _prolongation_scale(fine_unknown, coarse_unknown, dtype):
    # Cell-centred (bi/tri)linear interpolation from the coarse unknowns to the fine
    # ones is renormalised by this, so that it maps constants to constants next to
    # obstacles and walls (where some coarse neighbours are not unknowns).
    weight = _interpolate(
        jnp.ones(coarse_unknown.shape, dtype), fine_unknown, coarse_unknown
    )
    return jnp.where(weight > 0, 1 / jnp.where(weight > 0, weight, 1), 0)


def _transfers(fine_unknown, coarse_unknown, scale):
    """The prolongation `P` and the restriction `R = Pᵀ` between two levels."""

    def prolong(c):
        return scale.astype(c.dtype) * _interpolate(c, fine_unknown, coarse_unknown)

    def restrict(f):
        struct = jax.ShapeDtypeStruct(coarse_unknown.shape, f.dtype)
        return jax.linear_transpose(prolong, struct)(f)[0]

    return prolong, restrict


def _prolong_axis(c, axis):
    # Along one axis the fine cells 2i and 2i+1 get 3/4 of coarse cell i and 1/4 of
    # its neighbour on their side (zero beyond the box; renormalised above).
    n = c.shape[axis]
    left = neighbour_at(c, axis, -1)
    right = neighbour_at(c, axis, 1)
    fine = jnp.stack([0.75 * c + 0.25 * left, 0.75 * c + 0.25 * right], axis=axis + 1)
    shape = list(c.shape)
    shape[axis] = 2 * n
    return fine.reshape(shape)


def _galerkin(fine_apply, fine_unknown, dtype):
    """The coarse level `Pᵀ A P` of a level, assembled by probing: with the coarse
    cells coloured by their index modulo 5 per axis, one product per colour gives
    every coefficient, since `Pᵀ A P` couples cells at most two apart."""
    d = fine_unknown.ndim
    coarse_unknown = jnp.any(_blocks(fine_unknown), axis=tuple(range(1, 2 * d, 2)))
    scale = _prolongation_scale(fine_unknown, coarse_unknown, dtype)
    prolong, restrict = _transfers(fine_unknown, coarse_unknown, scale)
    index = jnp.indices(coarse_unknown.shape)
    colours = list(itertools.product(range(_WIDTH), repeat=d))

    def product(colour):
        probe = jnp.ones(coarse_unknown.shape, bool)
        for axis in range(d):
            probe &= index[axis] % _WIDTH == colour[axis]
        return restrict(fine_apply(prolong(probe.astype(dtype))))

    products = jax.lax.map(product, jnp.asarray(colours))
    # The coefficient of offset o at cell i is the product of colour (i + o) mod 5,
    # read at i; neighbours beyond the box have none.
    offsets = jnp.asarray(_offsets(d)).reshape((-1, d) + (1,) * d)
    neighbours = index[None] + offsets  # (K, d, *N)
    colour = jnp.zeros(neighbours.shape[:1] + neighbours.shape[2:], index.dtype)
    inside = coarse_unknown[None]
    for axis in range(d):
        colour = colour * _WIDTH + neighbours[:, axis] % _WIDTH
        inside &= (neighbours[:, axis] >= 0) & (
            neighbours[:, axis] < index.shape[axis + 1]
        )
    coefficients = jnp.where(inside, jnp.take_along_axis(products, colour, axis=0), 0)
    return _Stencil(coefficients, coarse_unknown), scale


class Multigrid(eqx.Module):
    """A geometric multigrid V-cycle for `FluidPoisson`, as the preconditioner of
    `dp.implicit.PCG` (MG-PCG).

    Each level halves the grid. A coarse cell is an unknown if any of its `2^d`
    children is; the prolongation `P` is cell-centred (bi/tri)linear interpolation
    between unknowns, renormalised near obstacles and walls so that it keeps
    constants; the restriction is its exact transpose `R = Pᵀ`; the coarse operator
    is the Galerkin product `A_c = Pᵀ A P` (a `5^d`-point stencil, assembled by
    probing), so solid and air cells of any shape, and the box walls, are seen at
    every level as they are on the fine grid. The cycle applies `smoothing_steps`
    damped-Jacobi sweeps, restricts the residual, recurses, prolongs the correction
    and applies the same sweeps again; the coarsest level (at most `max_coarse`
    cells) is solved by a dense pseudo-inverse. With the same smoother before and
    after, `R = Pᵀ` and Galerkin coarse operators, the coarse correction is the
    A-orthogonal projection onto the coarse space and the V-cycle is a symmetric
    positive (semi)definite map: PCG's theory holds. `FluidPoisson.project` keeps the
    directions off the null space of closed regions.

    **Arguments:**

    - `operator`: the `FluidPoisson` to precondition; every axis size must be
        divisible by 2 often enough to reach `max_coarse` cells.
    - `smoothing_steps`: Jacobi sweeps before and after each coarse correction.
    - `omega`: the Jacobi damping; default `2d / (2d + 1)` (4/5 in 2D, 6/7 in 3D),
        the factor that damps the upper half of the Laplacian's spectrum best.
    - `max_coarse`: the largest coarsest grid (cells), solved densely.

    Built once (the coarse stencils, and an eigendecomposition of the coarsest
    matrix), then `z = mg(r)` is one V-cycle: jit- and vmap-able, 2D and 3D.

    Reference: McAdams, Sifakis & Teran, "A parallel multigrid Poisson solver for
    fluids simulation on large grids", SCA 2010 (they rediscretise the coarse levels
    and smooth more near boundaries; Galerkin coarse operators are our choice);
    Trottenberg, Oosterlee & Schüller, *Multigrid* (2001), §5.
    """

    levels: tuple[Any, ...]
    inverse_diagonals: tuple[Float[Array, " *N"], ...]
    scales: tuple[Float[Array, " *N"], ...]
    coarse_inverse: Float[Array, "n n"]
    smoothing_steps: int = eqx.field(static=True)
    omega: float = eqx.field(static=True)

    def __init__(
        self,
        operator: FluidPoisson,
        *,
        smoothing_steps: int = 2,
        omega: float | None = None,
        max_coarse: int = 512,
    ):
        if not isinstance(operator, FluidPoisson):
            raise ValueError(
                "Multigrid preconditions a dp.solvers.poisson.FluidPoisson; got "
                f"{type(operator).__name__}."
            )
        if smoothing_steps < 1:
            raise ValueError(f"`smoothing_steps` must be >= 1, got {smoothing_steps}.")
        d = operator.num_spatial_dims
        self.omega = 2 * d / (2 * d + 1) if omega is None else float(omega)
        if not 0 < self.omega <= 1:
            raise ValueError(f"`omega` must be in (0, 1], got {self.omega}.")
        self.smoothing_steps = int(smoothing_steps)
        dtype = operator.kappa.dtype
        levels, scales = [operator], []
        unknown = operator.fluid
        while unknown.size > max_coarse:
            shape = unknown.shape
            if any(n % 2 or n < 4 for n in shape):
                raise ValueError(
                    f"Multigrid cannot coarsen the grid {operator.flags.shape}: at "
                    f"{shape} an axis is odd (or below 4 cells) while more than "
                    f"max_coarse={max_coarse} cells remain. Use sizes with more "
                    "factors of two (for example 2^k or 3 * 2^k), or raise max_coarse."
                )
            level, scale = _galerkin(levels[-1], unknown, dtype)
            levels.append(level)
            scales.append(scale)
            unknown = level.unknown
        self.levels = tuple(levels)
        self.scales = tuple(scales)
        self.inverse_diagonals = tuple(
            jnp.where(self._unknown(i), 1 / level.diagonal(), 0)
            for i, level in enumerate(levels)
        )
        coarsest = levels[-1]
        n = unknown.size
        eye = jnp.eye(n, dtype=dtype).reshape((n, *unknown.shape))
        matrix = jax.vmap(coarsest)(eye).reshape(n, n)
        self.coarse_inverse = jnp.linalg.pinv(matrix, hermitian=True)

    def __call__(self, r: SpatialField) -> SpatialField:
        return self._cycle(0, r)

    def _unknown(self, index):
        level = self.levels[index]
        return level.fluid if isinstance(level, FluidPoisson) else level.unknown

    def _smooth(self, index, x, r):
        level = self.levels[index]
        inverse_diagonal = self.inverse_diagonals[index].astype(r.dtype)
        for _ in range(self.smoothing_steps):
            x = x + self.omega * inverse_diagonal * (r - level(x))
        return x

    def _cycle(self, index, r):
        if index == len(self.levels) - 1:
            inverse = self.coarse_inverse.astype(r.dtype)
            return (inverse @ r.reshape(-1)).reshape(r.shape)
        level = self.levels[index]
        prolong, restrict = _transfers(
            self._unknown(index), self._unknown(index + 1), self.scales[index]
        )
        x = self._smooth(index, jnp.zeros_like(r), r)
        x = x + prolong(self._cycle(index + 1, restrict(r - level(x))))
        return self._smooth(index, x, r)
