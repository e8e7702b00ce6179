import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


def _positive(value, name, shape=()):
    value = (
        jnp.asarray(value, dtype=float) if not isinstance(value, jax.Array) else value
    )
    if not jnp.issubdtype(value.dtype, jnp.floating):
        value = value.astype(float)
    if value.shape != shape:
        raise ValueError(f"`{name}` must have shape {shape}, got {value.shape}.")
    if not isinstance(value, jax.core.Tracer) and not bool(
        np.all(np.asarray(value) > 0)
    ):
        raise ValueError(f"`{name}` must be > 0, got {np.asarray(value).tolist()}.")
    return value


def _inertia(inertia, default):
    if inertia is None:
        return default
    inertia = jnp.asarray(inertia, dtype=default.dtype)
    if inertia.shape == (3,):
        inertia = jnp.diag(inertia)
    if inertia.shape != (3, 3):
        raise ValueError(
            "`inertia` must be 3 principal moments or a 3 × 3 matrix (body frame), "
            f"got shape {inertia.shape}."
        )
    if not isinstance(inertia, jax.core.Tracer):
        eigenvalues = np.linalg.eigvalsh(np.asarray(inertia))
        if not np.allclose(inertia, inertia.T) or eigenvalues.min() <= 0:
            raise ValueError(
                "`inertia` must be symmetric positive definite, got eigenvalues "
                f"{eigenvalues.tolist()}."
            )
    return inertia


class Sphere(eqx.Module):
    """A rigid ball: one contact point at its centre with the radius as margin.

    **Arguments:**

    - `mass`: kg, > 0.
    - `radius`: m, > 0.
    - `inertia`: body-frame inertia (3 moments or 3 × 3, kg m²); default the solid
        ball's `(2/5) m r² I`.
    """

    mass: Float[Array, ""]
    radius: Float[Array, ""]
    inertia: Float[Array, "3 3"]

    def __init__(self, mass, radius, *, inertia=None):
        self.mass = _positive(mass, "mass")
        self.radius = _positive(radius, "radius")
        self.inertia = _inertia(
            inertia,
            0.4 * self.mass * self.radius**2 * jnp.eye(3, dtype=self.mass.dtype),
        )

    def contact_points(self) -> tuple[Float[Array, "K 3"], Float[Array, " K"]]:
        """Body-frame contact points and their radii (margins)."""
        return jnp.zeros((1, 3), self.radius.dtype), self.radius[None]


# The 8 vertices of the unit cube centred at the origin, as signs.
_CORNERS = np.array(
    [[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float
)


class Box(eqx.Module):
    """A rigid box: its 8 vertices are contact points (radius 0) against planes.

    **Arguments:**

    - `mass`: kg, > 0.
    - `size`: the full edge lengths `(a, b, c)`, m, each > 0 (a number: a cube).
    - `inertia`: body-frame inertia (3 moments or 3 × 3, kg m²); default the solid
        box's `(m/12) diag(b² + c², a² + c², a² + b²)`.
    """

    mass: Float[Array, ""]
    size: Float[Array, "3"]
    inertia: Float[Array, "3 3"]

    def __init__(self, mass, size, *, inertia=None):
        self.mass = _positive(mass, "mass")
        size = jnp.broadcast_to(jnp.asarray(size, dtype=self.mass.dtype), (3,))
        self.size = _positive(size, "size", (3,))
        a2, b2, c2 = self.size**2
        default = self.mass / 12 * jnp.diag(jnp.stack([b2 + c2, a2 + c2, a2 + b2]))
        self.inertia = _inertia(inertia, default)

    def contact_points(self) -> tuple[Float[Array, "K 3"], Float[Array, " K"]]:
        """Body-frame contact points and their radii (margins)."""
        points = 0.5 * jnp.asarray(_CORNERS, self.size.dtype) * self.size[None]
        return points, jnp.zeros(8, self.size.dtype)


class Plane(eqx.Module):
    """A static half-space `{y : n·y >= offset}` (the ground, an incline, a wall);
    bodies stay on the side the unit normal `n` points to.

    **Arguments:**

    - `normal`: a nonzero 3-vector (normalised here).
    - `offset`: m; the plane is `n·y = offset` (differentiable).
    """

    normal: Float[Array, "3"]
    offset: Float[Array, ""]

    def __init__(self, normal=(0.0, 0.0, 1.0), offset=0.0):
        normal = jnp.asarray(normal, dtype=float)
        if normal.shape != (3,):
            raise ValueError(f"`normal` must be a 3-vector, got shape {normal.shape}.")
        norm = jnp.linalg.norm(normal)
        if not isinstance(norm, jax.core.Tracer) and not float(norm) > 0:
            raise ValueError("`normal` must be nonzero.")
        self.normal = normal / norm
        self.offset = jnp.asarray(offset, dtype=normal.dtype)
        if self.offset.shape != ():
            raise ValueError(
                f"`offset` must be a number, got shape {self.offset.shape}."
            )
