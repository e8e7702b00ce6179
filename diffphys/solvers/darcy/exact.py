"""A manufactured solution of steady Darcy flow, `-∇·(a ∇u) = f` on `[0, L]²` with
`u = 0` on the boundary, for the order-of-accuracy tests: a smooth coefficient, the
solution `u = sin(πx/L) sin(πy/L)` and the source that makes it one (by automatic
differentiation). Fields are `(1, N, N)` on the nodes `i L / (N − 1)`, boundary
included, axis 0 `x`."""

import jax
import jax.numpy as jnp


def _nodes(num_points, domain_extent):
    x = jnp.linspace(0.0, domain_extent, num_points)
    return jnp.meshgrid(x, x, indexing="ij")


def _u(x, y, L):
    return jnp.sin(jnp.pi * x / L) * jnp.sin(jnp.pi * y / L)


def _a(x, y, L):
    return 1.0 + 0.5 * jnp.sin(2 * jnp.pi * x / L) * jnp.cos(jnp.pi * y / L) ** 2


def coefficient(num_points: int, domain_extent: float = 1.0):
    """`a = 1 + ½ sin(2πx/L) cos²(πy/L)` (between ½ and 3/2) on the nodes."""
    x, y = _nodes(num_points, domain_extent)
    return _a(x, y, domain_extent)[None]


def solution(num_points: int, domain_extent: float = 1.0):
    """`u = sin(πx/L) sin(πy/L)` on the nodes."""
    x, y = _nodes(num_points, domain_extent)
    return _u(x, y, domain_extent)[None]


def source(num_points: int, domain_extent: float = 1.0):
    """`f = -∇·(a ∇u)` of `coefficient` and `solution`, on the nodes."""
    L = domain_extent

    def flux(x, y):
        grad = jax.grad(_u, argnums=(0, 1))(x, y, L)
        return _a(x, y, L) * jnp.stack(grad)

    def f(x, y):
        dx = jax.grad(lambda s: flux(s, y)[0])(x)
        dy = jax.grad(lambda s: flux(x, s)[1])(y)
        return -(dx + dy)

    x, y = _nodes(num_points, domain_extent)
    return jax.vmap(jax.vmap(f))(x, y)[None]
