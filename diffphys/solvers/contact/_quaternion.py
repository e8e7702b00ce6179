"""Unit quaternions `q = (w, x, y, z)`, scalar first, body to world."""

import jax.numpy as jnp
from jaxtyping import Array, Float


def multiply(p: Float[Array, "4"], q: Float[Array, "4"]) -> Float[Array, "4"]:
    """The Hamilton product `p ⊗ q`."""
    pw, pv = p[0], p[1:]
    qw, qv = q[0], q[1:]
    return jnp.concatenate(
        [(pw * qw - pv @ qv)[None], pw * qv + qw * pv + jnp.cross(pv, qv)]
    )


def rotation_matrix(q: Float[Array, "4"]) -> Float[Array, "3 3"]:
    """`R(q)`, mapping body-frame vectors to the world frame."""
    w, x, y, z = q
    return jnp.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def cayley(omega: Float[Array, "3"], dt) -> Float[Array, "4"]:
    """`φ_h(ω) = (h/2) [√(4/h² − ‖ω‖²); ω]`: the unit quaternion that turns the
    body by its (body-frame) midpoint angular velocity `ω` over one step `h`
    (Dojo's Cayley-type map; needs `‖ω‖ < 2/h`)."""
    return 0.5 * dt * jnp.concatenate([_root(omega, dt)[None], omega])


def _root(omega, dt):
    """`s(ω) = √(4/h² − ‖ω‖²)`, floored so that a trial step past the map's
    limit gives a finite (wrong) value instead of NaN; the solver's guard keeps
    accepted iterates below `3.9/h²`."""
    return jnp.sqrt(jnp.maximum(4 / dt**2 - omega @ omega, 0.01 / dt**2))


def from_axis_angle(axis, angle) -> Float[Array, "4"]:
    """The rotation by `angle` (radians) about `axis`."""
    axis = jnp.asarray(axis, float)
    axis = axis / jnp.linalg.norm(axis)
    return jnp.concatenate([jnp.cos(angle / 2)[None], jnp.sin(angle / 2) * axis])


def from_rotation_matrix(r: Float[Array, "3 3"]) -> Float[Array, "4"]:
    """The unit quaternion of the rotation matrix `r` (with `w >= 0`), by
    Shepperd's rule: of the four formulas, the one whose divisor is largest."""
    trace = jnp.trace(r)
    d = jnp.diagonal(r)
    # Four times the squares of w, x, y, z.
    squares = jnp.stack(
        [1 + trace, 1 + 2 * d[0] - trace, 1 + 2 * d[1] - trace, 1 + 2 * d[2] - trace]
    )
    i = jnp.argmax(squares)
    s = 2 * jnp.sqrt(jnp.maximum(squares[i], 1e-300))
    a = jnp.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    b = jnp.array([r[0, 1] + r[1, 0], r[0, 2] + r[2, 0], r[1, 2] + r[2, 1]])
    candidates = jnp.stack(
        [
            jnp.array([s * s / 4, a[0], a[1], a[2]]),
            jnp.array([a[0], s * s / 4, b[0], b[1]]),
            jnp.array([a[1], b[0], s * s / 4, b[2]]),
            jnp.array([a[2], b[1], b[2], s * s / 4]),
        ]
    )
    q = candidates[i] / s
    return q * jnp.where(q[0] < 0, -1.0, 1.0)
