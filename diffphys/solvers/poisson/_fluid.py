from collections.abc import Sequence

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from ..._custom_types import SpatialField


FLUID = 0
"""Flag of a cell that carries a pressure unknown."""
SOLID = 1
"""Flag of a solid cell: its faces with fluid cells carry no flux (Neumann)."""
AIR = 2
"""Flag of an air (free-surface) cell: it holds `p = 0` (Dirichlet)."""

_WALL_FLAGS = {"solid": SOLID, "air": AIR}

Walls = str | Sequence[tuple[str, str]]


def _wall_names(walls, ndim: int) -> tuple[tuple[str, str], ...]:
    if isinstance(walls, str):
        walls = ((walls, walls),) * ndim
    walls = tuple(tuple(pair) for pair in walls)
    if len(walls) != ndim or any(len(pair) != 2 for pair in walls):
        raise ValueError(
            f"`walls` must be 'solid', 'air', or one (low, high) pair per axis "
            f"({ndim} pairs for a {ndim}D grid), got {walls!r}."
        )
    for pair in walls:
        for wall in pair:
            if wall not in _WALL_FLAGS:
                raise ValueError(
                    f"Unknown wall type {wall!r}: each wall is 'solid' (no flux) or "
                    "'air' (p = 0 beyond the wall)."
                )
    return walls


def neighbour(u: Array, axis: int, offset: int, fill) -> Array:
    """`u` at index `i + offset` along `axis`, `fill` beyond the box."""
    pad = [(0, 0)] * u.ndim
    pad[axis] = (1, 1)
    start = 1 + offset
    padded = jnp.pad(u, pad, constant_values=fill)
    return lax.slice_in_dim(padded, start, start + u.shape[axis], axis=axis)


def _check_flags(flags) -> Array:
    if not hasattr(flags, "dtype"):
        flags = np.asarray(flags)
    if not jnp.issubdtype(flags.dtype, jnp.integer) or flags.dtype == jnp.bool_:
        raise ValueError(
            f"`flags` must be an integer array of FLUID, SOLID and AIR, got dtype "
            f"{flags.dtype}; build it with jnp.full(shape, dp.solvers.poisson.FLUID) "
            "and set obstacles to SOLID, free-surface cells to AIR."
        )
    if flags.ndim not in (2, 3):
        raise ValueError(
            f"`flags` must be a 2D or 3D grid of cell flags, got shape {flags.shape}."
        )
    message_values = (
        f"`flags` may hold only FLUID ({FLUID}), SOLID ({SOLID}) and AIR ({AIR})."
    )
    message_fluid = (
        "`flags` has no FLUID cell, so there is no pressure unknown; mark the cells "
        f"that carry fluid with FLUID ({FLUID})."
    )
    if isinstance(flags, jax.core.Tracer):
        known = (flags == FLUID) | (flags == SOLID) | (flags == AIR)
        flags = eqx.error_if(flags, ~jnp.all(known), message_values)
        return eqx.error_if(flags, ~jnp.any(flags == FLUID), message_fluid)
    values = np.asarray(flags)
    known = (values == FLUID) | (values == SOLID) | (values == AIR)
    if not np.all(known):
        bad = sorted(set(np.unique(values[~known]).tolist()))
        raise ValueError(f"{message_values} Found {bad[:5]}.")
    if not np.any(values == FLUID):
        raise ValueError(message_fluid)
    return jnp.asarray(flags)


def _faces(ndim):
    for axis in range(ndim):
        for offset in (1, -1):
            yield axis, offset


def components(fluid: Bool[Array, " *N"]) -> Int[Array, " *N"]:
    """Connected components of the fluid cells (faces shared, not edges or corners).

    Each fluid cell gets the flat index of the lowest-indexed cell of its component;
    other cells get `fluid.size`. Minimum-label propagation with pointer jumping, in a
    `lax.while_loop`, so it runs under `jit` and `vmap`.
    """
    n = fluid.size
    none = jnp.asarray(n, jnp.int32)
    labels = jnp.where(fluid, jnp.arange(n, dtype=jnp.int32).reshape(fluid.shape), n)

    def sweep(labels):
        lowest = labels
        for axis, offset in _faces(fluid.ndim):
            lowest = jnp.minimum(lowest, neighbour(labels, axis, offset, n))
        lowest = jnp.where(fluid, lowest, none)
        # Pointer jumping: a cell's label is the index of a cell whose label is no
        # larger, so labels[labels] moves down the chain in one step.
        flat = jnp.append(lowest.reshape(-1), none)
        return flat[flat[:-1]].reshape(fluid.shape)

    def body(carry):
        labels, _ = carry
        new = sweep(labels)
        return new, jnp.any(new != labels)

    return lax.while_loop(lambda c: c[1], body, (labels, jnp.array(True)))[0]


class FluidPoisson(eqx.Module):
    """The pressure operator `p -> -∇·(κ ∇p)` of an incompressible-flow projection on a
    uniform cell grid with fluid, solid and air cells (2D and 3D).

    Cells are the squares (cubes) of side `h_a = L_a / N_a` of the box `[0, L]^d`,
    pressures sit at their centres. `flags[i]` is `FLUID` (an unknown), `SOLID` or
    `AIR`. For a fluid cell `i` and each of its faces `f` towards cell `j`,

    `(A p)_i = Σ_f κ_f (p_i - p_j) / h_a²`,

    where `p_j = 0` if `j` is an air cell (Dirichlet, the free surface at the air
    cell's centre), the face is dropped if `j` is solid (Neumann: zero flux, the
    wall at the face), and `κ_f = (κ_i + κ_j) / 2` (`κ_i` towards air). The walls of
    the box behave as a layer of solid cells or of air cells (`walls`). Only fluid
    cells are unknowns: non-fluid entries of the input are ignored and those of the
    output are exactly zero.

    `A` is symmetric, and positive definite on each fluid component (set of
    face-connected fluid cells) that touches air. A component with no air around it
    (a closed box) has the constants as null space: there `A p = b` is solvable only
    if `b` sums to zero over the component. `dp.implicit.linear_solve` therefore
    projects `b` to mean zero over every such component (`project_rhs=True`, the
    default: the divergence of a discrete velocity field sums to zero up to
    round-off), runs the solver on mean-zero directions and returns the mean-zero
    solution. With `project_rhs=False` a right-hand side whose mean over such a
    component exceeds round-off is refused with an error instead. `project` and
    `prepare_rhs` are these two maps; any operator may define them.

    **Arguments:**

    - `flags`: integer array `(*N)` of `FLUID`, `SOLID` and `AIR`, `d = 2, 3`.
    - `domain_extent`: the side `L` of the box, or one length per axis.
    - `walls`: `"solid"` (default, no flux through the box walls), `"air"` (`p = 0`
        beyond them), or one `(low, high)` pair of these per axis, for example
        `(("solid", "solid"), ("solid", "air"))` for a 2D tank open at the top.
    - `kappa`: optional positive coefficient at the cells, shape `(*N)` (`1/ρ` for a
        variable-density projection); default 1. Gradients flow to it.
    - `project_rhs`: as above.

    Fields are scalar and unchannelled, `(*N)`, as for `DiffusionOperator`.

    Reference: Bridson, *Fluid Simulation for Computer Graphics* (2nd ed.), ch. 5
    (the voxel pressure solve); McAdams, Sifakis & Teran (2010).
    """

    flags: Int[Array, " *N"]
    kappa: SpatialField
    fluid: Bool[Array, " *N"]
    labels: Int[Array, " *N"]
    closed: Bool[Array, " *N"]
    domain_extent: tuple[float, ...] = eqx.field(static=True)
    walls: tuple[tuple[str, str], ...] = eqx.field(static=True)
    project_rhs: bool = eqx.field(static=True)

    def __init__(
        self,
        flags: ArrayLike,
        *,
        domain_extent: float | Sequence[float] = 1.0,
        walls: Walls = "solid",
        kappa: SpatialField | None = None,
        project_rhs: bool = True,
    ):
        flags = _check_flags(flags)
        ndim = flags.ndim
        if isinstance(domain_extent, int | float):
            domain_extent = (float(domain_extent),) * ndim
        domain_extent = tuple(float(length) for length in domain_extent)
        if len(domain_extent) != ndim or min(domain_extent) <= 0:
            raise ValueError(
                f"`domain_extent` must be one positive length, or {ndim} (one per "
                f"axis), got {domain_extent}."
            )
        self.walls = _wall_names(walls, ndim)
        self.domain_extent = domain_extent
        self.project_rhs = bool(project_rhs)
        self.flags = flags
        if kappa is None:
            kappa = jnp.ones(flags.shape)
        if jnp.shape(kappa) != flags.shape:
            raise ValueError(
                f"`kappa` has shape {jnp.shape(kappa)}; it must have the shape of "
                f"`flags`, {flags.shape}."
            )
        self.kappa = jnp.asarray(kappa)
        self.fluid = flags == FLUID
        self.labels = components(self.fluid)
        # A component is closed when none of its cells has an air face.
        touches_air = jnp.zeros(flags.shape, bool)
        for axis, offset in _faces(ndim):
            touches_air |= self._neighbour_flags(axis, offset) == AIR
        touches_air &= self.fluid
        open_component = jax.ops.segment_max(
            touches_air.reshape(-1).astype(jnp.int32),
            self.labels.reshape(-1),
            flags.size + 1,
        )
        self.closed = self.fluid & (open_component[self.labels] <= 0)

    @property
    def num_spatial_dims(self) -> int:
        return self.flags.ndim

    @property
    def spacings(self) -> tuple[float, ...]:
        """The cell size of each axis, `h_a = L_a / N_a`."""
        return tuple(
            length / n
            for length, n in zip(self.domain_extent, self.flags.shape, strict=True)
        )

    def _neighbour_flags(self, axis, offset):
        wall = self.walls[axis][0 if offset < 0 else 1]
        return neighbour(self.flags, axis, offset, _WALL_FLAGS[wall])

    def _face_weights(self, dtype):
        # (axis, offset, κ_f / h² on the face towards i + offset; zero if closed).
        kappa = self.kappa.astype(dtype)
        for axis, offset in _faces(self.num_spatial_dims):
            other = self._neighbour_flags(axis, offset)
            k_other = neighbour(kappa, axis, offset, 0.0)
            k_face = jnp.where(other == FLUID, 0.5 * (kappa + k_other), kappa)
            open_face = self.fluid & (other != SOLID)
            yield (
                axis,
                offset,
                jnp.where(open_face, k_face, 0) / self.spacings[axis] ** 2,
            )

    def __call__(self, p: SpatialField) -> SpatialField:
        if jnp.shape(p) != self.flags.shape:
            raise ValueError(
                f"p has shape {jnp.shape(p)} but the operator acts on fields of shape "
                f"{self.flags.shape} (the shape of flags)."
            )
        p = jnp.where(self.fluid, p, 0)
        out = jnp.zeros_like(p)
        for axis, offset, weight in self._face_weights(p.dtype):
            out = out + weight * (p - neighbour(p, axis, offset, 0.0))
        return out

    def diagonal(self) -> SpatialField:
        """The diagonal of `A` (for `dp.implicit.Jacobi`), 1 on non-fluid cells and on
        fluid cells with no open face, so that dividing by it leaves zeros alone."""
        diag = sum(w for _, _, w in self._face_weights(self.kappa.dtype))
        return jnp.where(diag > 0, diag, 1)

    def project(self, p: SpatialField) -> SpatialField:
        """The orthogonal projection onto the unknowns: zero on non-fluid cells, mean
        zero over every closed fluid component. `A = project ∘ A ∘ project`."""
        p = jnp.where(self.fluid, p, 0)
        labels = self.labels.reshape(-1)
        size = self.flags.size + 1
        sums = jax.ops.segment_sum(p.reshape(-1), labels, size)
        counts = jax.ops.segment_sum(
            self.fluid.reshape(-1).astype(p.dtype), labels, size
        )
        mean = (sums / jnp.maximum(counts, 1))[self.labels]
        return jnp.where(self.closed, p - mean, p)

    def prepare_rhs(self, b: SpatialField) -> SpatialField:
        """The right-hand side the solve uses: `project(b)`, or with
        `project_rhs=False` `b` on the fluid cells after checking that its part in the
        null space is round-off (an error otherwise)."""
        if self.project_rhs:
            return self.project(b)
        masked = jnp.where(self.fluid, b, 0)
        null_part = jnp.linalg.norm(masked - self.project(b))
        eps = jnp.finfo(masked.dtype).eps
        limit = 100 * eps * jnp.sqrt(masked.size) * jnp.linalg.norm(masked)
        return eqx.error_if(
            masked,
            null_part > limit,
            "The right-hand side does not sum to zero over a closed fluid region (no "
            "air cell and solid walls around it), so A p = b has no solution. Make "
            "b mean-zero there, or build FluidPoisson(..., project_rhs=True) to "
            "project it.",
        )

    def cell_centres(self) -> tuple[Float[Array, " *N"], ...]:
        """Coordinates of the cell centres, one array per axis (`indexing="ij"`)."""
        axes = [
            h * (jnp.arange(n, dtype=self.kappa.dtype) + 0.5)
            for h, n in zip(self.spacings, self.flags.shape, strict=True)
        ]
        return tuple(jnp.meshgrid(*axes, indexing="ij"))
