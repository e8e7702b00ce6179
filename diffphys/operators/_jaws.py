"""JAWS-style spatially weighted Jacobian regularisation (a reconstruction).

Nie & Suzuki, "JAWS: Jacobian-Adaptive Weighting for Stability", arXiv 2603.05538.
Only the abstract was available: MAP estimation with a spatially heteroscedastic
prior whose Jacobian-penalty strength follows local complexity (strong in smooth
regions, relaxed at shocks). The paper's equations, the parameterisation of the
variance field, the Jacobian estimator and every setting are unknown; everything
below is our reconstruction, and no result of it is the paper's.
"""

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, PRNGKeyArray, Scalar

from .._custom_types import Field, OutField, ScalarLike, SpatialField
from ._base import AbstractOperator, apply_model
from ._fno import check_state


def _check_same_shape(model: Callable, u: Field) -> None:
    out = jax.eval_shape(model, u)
    if out.shape != u.shape:
        raise ValueError(
            f"A Jacobian penalty needs a map of a state to a state of the same shape; "
            f"the model maps {u.shape} to {out.shape}."
        )


def rademacher_probes(key: PRNGKeyArray, shape, num_probes: int, dtype) -> Array:
    """`num_probes` random ±1 fields of `shape` (E[v vᵀ] = I)."""
    return jr.rademacher(key, (num_probes, *shape), dtype=dtype)


def jacobian_row_norms(model: Callable, u: Field, probes: Array) -> SpatialField:
    """Estimate of `‖J_x‖² = Σ_y (∂f(u)_x / ∂u_y)²` at every grid location `x`
    (output channels summed), from JVPs along `probes` `(P, C, *N)`:
    `mean_p Σ_c (J v_p)_{c,x}²`. Unbiased whenever `E[v vᵀ] = I` (Rademacher or
    Gaussian probes); exact when the probes are all `2^n` sign vectors."""
    _check_same_shape(model, u)

    def one(v):
        return jax.jvp(model, (u,), (v,))[1]

    jv = jax.lax.map(one, probes) if probes.shape[0] > 8 else jax.vmap(one)(probes)
    return jnp.mean(jnp.sum(jnp.square(jv), axis=1), axis=0)


class JAWS(AbstractOperator):
    """JAWS-style wrapper: any operator plus a learned spatial log-variance `s(x)`
    that weights a per-location Jacobian penalty (reconstruction; see the module
    docstring — the paper's Eq. 6 was not available).

    Calling it calls the wrapped operator, unchanged. `penalty(u, key=...)` is

    `mean_x [½ e^{−s(x)} ‖J_x‖² + ½ s(x)] + (prior_weight / 2) mean_x (s(x) − s_prior)²`

    with `‖J_x‖²` the squared norm of row `x` of the operator's Jacobian at `u`
    (estimated with Rademacher JVP probes, `jacobian_row_norms`). The minimiser over
    `s` is `s = log ‖J_x‖²`, which leaves `½ log ‖J_x‖²`: a pull that is strong where
    the operator is insensitive (smooth regions) and weak where it is sensitive
    (shocks). `s ≥ s_min` (softplus floor) keeps the objective bounded below.

    `s(x)` is either a `"head"` — a small circular convolutional network of the
    state, so the weight moves with the shocks, resolution-bound through its kernel
    size in cells — or a free `"field"` on a fixed grid of `num_points` per axis.

    **Arguments:** `operator`; `num_spatial_dims`, `num_channels` of the state;
    `variance` (`"head"` or `"field"`); `num_points` (for `"field"`); `s_min`,
    `s_prior`, `prior_weight`; `hidden`, `kernel_size` of the head; `key`.
    """

    operator: Callable
    head: tuple[eqx.nn.Conv, ...] | None
    field: Array | None
    num_spatial_dims: int = eqx.field(static=True)
    s_min: float = eqx.field(static=True)
    s_prior: float = eqx.field(static=True)
    prior_weight: float = eqx.field(static=True)

    def __init__(
        self,
        operator: Callable,
        num_spatial_dims: int,
        num_channels: int,
        *,
        variance: str = "head",
        num_points: int | None = None,
        s_min: float = -4.0,
        s_prior: float = 0.0,
        prior_weight: float = 1e-3,
        hidden: int = 16,
        kernel_size: int = 5,
        key: PRNGKeyArray,
    ):
        if not callable(operator):
            raise ValueError("JAWS wraps an operator: a callable u -> u_next.")
        if prior_weight < 0:
            raise ValueError(f"`prior_weight` must be >= 0, got {prior_weight}.")
        if not s_prior > s_min:
            raise ValueError(f"`s_prior` ({s_prior}) must exceed `s_min` ({s_min}).")
        d = num_spatial_dims
        # Start at s(x) = s_prior: the raw output whose softplus is s_prior - s_min.
        start = s_prior - s_min + math.log(-math.expm1(-(s_prior - s_min)))
        if variance == "head":
            k1, k2 = jr.split(key)
            self.head = (
                eqx.nn.Conv(
                    d,
                    num_channels,
                    hidden,
                    kernel_size,
                    padding=kernel_size // 2,
                    padding_mode="CIRCULAR",
                    key=k1,
                ),
                _constant_bias(eqx.nn.Conv(d, hidden, 1, 1, key=k2), start),
            )
            self.field = None
        elif variance == "field":
            if num_points is None or num_points < 1:
                raise ValueError("A 'field' log-variance needs `num_points` >= 1.")
            self.head, self.field = None, jnp.full((num_points,) * d, start)
        else:
            raise ValueError(f"`variance` must be 'head' or 'field', got {variance!r}.")
        self.operator = operator
        self.num_spatial_dims = d
        self.s_min, self.s_prior = float(s_min), float(s_prior)
        self.prior_weight = float(prior_weight)

    def __call__(
        self, u: Field, t: ScalarLike = 0.0, *, key: PRNGKeyArray | None = None
    ) -> OutField:
        return apply_model(self.operator, u, t, key)

    def log_variance(self, u: Field) -> SpatialField:
        """`s(x) >= s_min` on the grid of `u`, shape `N`."""
        check_state(u, self.num_spatial_dims, "JAWS")
        if self.head is not None:
            raw = self.head[1](jax.nn.gelu(self.head[0](u)))[0]
        else:
            if self.field.shape != u.shape[1:]:
                raise ValueError(
                    f"The log-variance field lives on a grid {self.field.shape}; the "
                    f"state is on {u.shape[1:]}. Use variance='head' to change grids."
                )
            raw = self.field
        return self.s_min + jax.nn.softplus(raw.astype(u.dtype))

    def penalty(self, u: Field, *, key: PRNGKeyArray, num_probes: int = 1) -> Scalar:
        """The JAWS-style term at state `u` (a scalar to add to the data loss)."""
        probes = rademacher_probes(key, u.shape, num_probes, u.dtype)
        rows = jacobian_row_norms(self, u, probes)
        return self.weighted_penalty(u, rows)

    def weighted_penalty(self, u: Field, rows: SpatialField) -> Scalar:
        """The term for given row norms `‖J_x‖²` (e.g. exact ones)."""
        s = self.log_variance(u)
        value = jnp.mean(0.5 * jnp.exp(-s) * rows + 0.5 * s)
        prior = 0.5 * self.prior_weight * jnp.mean(jnp.square(s - self.s_prior))
        return value + prior


def _constant_bias(conv: eqx.nn.Conv, value: float) -> eqx.nn.Conv:
    """`conv` with its bias set to `value` (and its weights scaled down), so the head
    starts near a constant output."""
    conv = eqx.tree_at(lambda c: c.bias, conv, jnp.full_like(conv.bias, value))
    return eqx.tree_at(lambda c: c.weight, conv, 0.1 * conv.weight)


def spectral_norm_penalty(
    model: Callable,
    u: Field,
    *,
    key: PRNGKeyArray,
    num_iterations: int = 5,
    bound: float = 1.0,
) -> tuple[Scalar, Scalar]:
    """The global contractivity baseline that JAWS argues against:
    `max(σ_max(J) − bound, 0)²`, with `σ_max` of the Jacobian at `u` from
    `num_iterations` power iterations `v ← Jᵀ(J v) / ‖·‖` (one JVP and one VJP each,
    without gradient), then `σ_max ≈ ‖J v‖` with gradient. Returns
    `(penalty, σ_max)`; the estimate is from below, tightening with iterations."""
    _check_same_shape(model, u)
    _, vjp = jax.vjp(model, u)

    def iterate(v, _):
        w = vjp(jax.jvp(model, (u,), (v,))[1])[0]
        return w / jnp.linalg.norm(w), None

    v = jr.normal(key, u.shape, u.dtype)
    v, _ = jax.lax.scan(iterate, v / jnp.linalg.norm(v), None, num_iterations)
    v = jax.lax.stop_gradient(v)
    sigma = jnp.linalg.norm(jax.jvp(model, (u,), (v,))[1])
    return jnp.square(jnp.maximum(sigma - bound, 0.0)), sigma


class Residual(AbstractOperator):
    """`u + operator(u)`: a network that predicts the increment of one step."""

    operator: Callable

    def __call__(
        self, u: Field, t: ScalarLike = 0.0, *, key: PRNGKeyArray | None = None
    ) -> OutField:
        return u + apply_model(self.operator, u, t, key)
