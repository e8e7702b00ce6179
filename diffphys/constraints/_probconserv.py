import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._custom_types import Array, ArrayLike, Float


class Diagonal(eqx.Module):
    """A diagonal covariance: the variances, shape `(..., n)` like the mean."""

    variance: Float[Array, "*B n"]


class Full(eqx.Module):
    """A full covariance matrix per slice, shape `(..., n, n)`."""

    matrix: Float[Array, "*B n n"]

    @property
    def variance(self):
        return jnp.diagonal(self.matrix, axis1=-2, axis2=-1)


class Ensemble(eqx.Module):
    """`S` samples (ensemble members), shape `(S, ..., n)`; the mean and covariance
    are their empirical moments."""

    samples: Float[Array, "S *B n"]

    @property
    def mean(self):
        return jnp.mean(self.samples, axis=0)

    @property
    def variance(self):
        return jnp.var(self.samples, axis=0, ddof=1)


Covariance = Diagonal | Full | Ensemble


def _as_matrix(G: ArrayLike) -> Array:
    G = jnp.asarray(G)
    if G.ndim == 1:
        G = G[None]
    if G.ndim != 2 or G.shape[0] < 1:
        raise ValueError(
            f"The constraint G must be a row (n,) or a matrix (m, n), got shape "
            f"{G.shape}."
        )
    if not isinstance(G, jax.core.Tracer):
        rank = np.linalg.matrix_rank(np.asarray(G, np.float64))
        if rank < G.shape[0]:
            raise ValueError(
                f"The constraint G ({G.shape[0]} rows) has rank {rank}: its rows are "
                "linearly dependent, so G Gᵀ is singular. Drop the redundant rows."
            )
    return G


def _check_b(G, mean, b):
    """`b` as `(B, m)` next to a mean flattened to `(B, n)`."""
    m, n = G.shape
    if mean.shape[-1] != n:
        raise ValueError(
            f"The mean's last axis has {mean.shape[-1]} points but the constraint G "
            f"has {n} columns."
        )
    b = jnp.asarray(b, mean.dtype)
    batch = mean.shape[:-1]
    if b.shape == batch and m == 1:
        b = b[..., None]
    if b.shape != batch + (m,):
        raise ValueError(
            f"b must have shape {batch} (one constraint per slice) or {batch + (m,)}, "
            f"matching the mean {mean.shape} and G {G.shape}; got {b.shape}."
        )
    return b.reshape(-1, m)


def _cholesky(S):
    L = jnp.linalg.cholesky(S)
    return eqx.error_if(
        L,
        ~jnp.all(jnp.isfinite(L)),
        "G Σ Gᵀ + σ_G² I is singular: the covariance vanishes on the constraint's "
        "support (or G has dependent rows). Give the model a variance floor or use "
        "noise > 0.",
    )


def _solve_lower(L, B):
    return jax.scipy.linalg.solve_triangular(L, B, lower=True)


class AbstractConstraint(eqx.Module):
    """A constraint applied to a model's output: `(mean, covariance, b)` →
    `(mean, covariance)` constrained, differentiably (so it can sit inside
    training). `mean` is `(..., n)`: the last axis is constrained, the leading
    ones (time slices, batch) are mapped over."""

    G: eqx.AbstractVar[Array]

    @abc.abstractmethod
    def __call__(self, mean, covariance, b): ...


class ProbConserv(AbstractConstraint):
    """ProbConserv's update: condition a Gaussian `N(μ, Σ)` on `G u = b + ε`,
    `ε ~ N(0, σ_G² I)`.

    `μ̃ = μ - Σ Gᵀ (σ_G² I + G Σ Gᵀ)⁻¹ (G μ - b)`,
    `Σ̃ = Σ - Σ Gᵀ (σ_G² I + G Σ Gᵀ)⁻¹ G Σ`.

    With `σ_G = 0` the mean satisfies `G μ̃ = b` exactly (the paper's
    ProbConserv); the correction is variance-weighted, so it lands where the model
    is unsure (near fronts and shocks). Computed with a Cholesky factor of the
    `m × m` matrix `σ_G² I + G Σ Gᵀ` and triangular solves (no inverse), and
    `Σ̃ = Σ - W Wᵀ` with `W = Σ Gᵀ L⁻ᵀ`, symmetric by construction: stable in
    float32.

    **Arguments:**

    - `G`: the constraint, a row `(n,)` (one per slice, e.g. `mass_weights(x)`) or a
        matrix `(m, n)` of full row rank.
    - `noise`: `σ_G >= 0`.
    - `full_covariance`: for a `Diagonal` input, return the posterior as `Full`
        (it is no longer diagonal; needed to sample, e.g. shock positions) instead
        of its marginal variances as `Diagonal`.

    **Call:** `constraint(mean, covariance, b) -> (mean, covariance)` with
    `covariance` a `Diagonal`, `Full` or `Ensemble` (whose mean must be `mean`;
    the members are moved by the square-root ensemble update, so their empirical
    moments are exactly the Gaussian posterior of their own moments), and `b`
    of shape `(...)` or `(..., m)`.

    Reference: D. Hansen, D. C. Maddix, S. Alizadeh, G. Gupta, M. W. Mahoney,
    "Learning Physical Models that Can Respect Conservation Laws", ICML 2023
    (eqs. of §3); the ensemble square-root update: J. S. Whitaker, T. M. Hamill,
    Mon. Weather Rev. 130 (2002), generalised to `m` rows by an eigenbasis of
    `YᵀY`.
    """

    G: Array
    noise: Array
    full_covariance: bool = eqx.field(static=True)

    def __init__(self, G: ArrayLike, *, noise: ArrayLike = 0.0, full_covariance=False):
        self.G = _as_matrix(G)
        self.noise = jnp.asarray(noise)
        if jnp.ndim(self.noise) != 0:
            raise ValueError("`noise` (σ_G) must be a scalar.")
        if not isinstance(self.noise, jax.core.Tracer) and float(self.noise) < 0:
            raise ValueError(f"`noise` (σ_G) must be >= 0, got {float(self.noise)}.")
        self.full_covariance = full_covariance

    def _gain(self, SGt, dtype):
        """`L` (Cholesky of σ² I + G Σ Gᵀ) from `Σ Gᵀ` (n, m)."""
        G = self.G.astype(dtype)
        m = G.shape[0]
        S = G @ SGt + self.noise.astype(dtype) ** 2 * jnp.eye(m, dtype=dtype)
        return _cholesky(0.5 * (S + S.T))

    def _update(self, mu, SGt, b):
        """Returns `μ̃` and `W = Σ Gᵀ L⁻ᵀ` (so `Σ̃ = Σ - W Wᵀ`)."""
        L = self._gain(SGt, mu.dtype)
        W = _solve_lower(L, SGt.T).T
        residual = self.G.astype(mu.dtype) @ mu - b
        return mu - W @ _solve_lower(L, residual), W

    def __call__(self, mean, covariance: Covariance, b):
        mean = jnp.asarray(mean)
        G = self.G.astype(mean.dtype)
        bs = _check_b(G, mean, b)
        batch, n = mean.shape[:-1], mean.shape[-1]
        mus = mean.reshape(-1, n)
        if isinstance(covariance, Diagonal):
            v = _reshape(covariance.variance, mean.shape, "Diagonal variance")

            def one(mu, var, b):
                mu, W = self._update(mu, var[:, None] * G.T, b)
                if self.full_covariance:
                    return mu, jnp.diag(var) - W @ W.T
                return mu, var - jnp.sum(W**2, axis=1)

            mu, cov = jax.vmap(one)(mus, v.reshape(-1, n), bs)
            out = (
                Full(cov.reshape(batch + (n, n)))
                if self.full_covariance
                else Diagonal(cov.reshape(mean.shape))
            )
            return mu.reshape(mean.shape), out
        if isinstance(covariance, Full):
            C = _reshape(covariance.matrix, mean.shape + (n,), "Full matrix")

            def one(mu, C, b):
                mu, W = self._update(mu, C @ G.T, b)
                return mu, C - W @ W.T

            mu, cov = jax.vmap(one)(mus, C.reshape(-1, n, n), bs)
            return mu.reshape(mean.shape), Full(cov.reshape(batch + (n, n)))
        if isinstance(covariance, Ensemble):
            X = covariance.samples
            if X.shape[1:] != mean.shape or X.shape[0] < 2:
                raise ValueError(
                    f"Ensemble samples must have shape (S >= 2,) + {mean.shape}, got "
                    f"{X.shape}."
                )
            X = jnp.moveaxis(X.reshape(X.shape[0], -1, n), 0, 1)  # (B, S, n)

            def one(mu, X, b):
                k = X.shape[0]
                A = (X - jnp.mean(X, axis=0, keepdims=True)) / jnp.sqrt(
                    k - 1.0
                )  # Σ = Aᵀ A
                Y = A @ G.T  # (S, m)
                mu, _ = self._update(mu, A.T @ Y, b)
                # Anomalies A' = (I - Y M Yᵀ) A with M = Q diag(1/(s + σ√s)) Qᵀ,
                # s = σ² + eig(YᵀY): (I - Y M Yᵀ)² = I - Y S⁻¹ Yᵀ, so the members'
                # covariance is the posterior one; at σ = 0 a projection, exact
                # to round-off (no square root of 1 - λ).
                lam, Q = jnp.linalg.eigh(Y.T @ Y)
                sigma = self.noise.astype(mu.dtype)
                s = sigma**2 + lam
                M = (Q / (s + sigma * jnp.sqrt(s))[None]) @ Q.T
                return mu[None] + jnp.sqrt(k - 1.0) * (A - Y @ (M @ (Y.T @ A)))

            Xn = jax.vmap(one)(mus, X, bs)
            samples = jnp.moveaxis(Xn, 1, 0).reshape(covariance.samples.shape)
            return jnp.mean(samples, axis=0), Ensemble(samples)
        raise ValueError(
            "`covariance` must be dp.constraints.Diagonal(variance), Full(matrix) or "
            f"Ensemble(samples), got {type(covariance).__name__}."
        )


def _reshape(x, shape, what):
    x = jnp.asarray(x)
    if x.shape != shape:
        raise ValueError(f"The {what} must have shape {shape}, got {x.shape}.")
    return x


class HardProjection(AbstractConstraint):
    """The Euclidean projection onto `G u = b` (ProbConserv with `Σ = I`, the
    paper's HardC baseline): `μ̃ = μ - Gᵀ (G Gᵀ)⁻¹ (G μ - b)`. Covariances pass
    through unchanged, ensemble members are each projected. `covariance` may be
    `None` for a deterministic output."""

    G: Array

    def __init__(self, G: ArrayLike):
        self.G = _as_matrix(G)

    def project(self, mean, b):
        mean = jnp.asarray(mean)
        G = self.G.astype(mean.dtype)
        bs = _check_b(G, mean, b)
        L = _cholesky(G @ G.T)

        def one(mu, b):
            y = jax.scipy.linalg.cho_solve((L, True), G @ mu - b)
            return mu - G.T @ y

        return jax.vmap(one)(mean.reshape(-1, mean.shape[-1]), bs).reshape(mean.shape)

    def __call__(self, mean, covariance=None, b=None):
        if b is None:
            raise ValueError("HardProjection needs the right-hand side `b`.")
        if isinstance(covariance, Ensemble):
            X = covariance.samples
            bb = jnp.broadcast_to(jnp.asarray(b, X.dtype), X.shape[:1] + jnp.shape(b))
            samples = jax.vmap(self.project)(X, bb)
            return jnp.mean(samples, axis=0), Ensemble(samples)
        return self.project(mean, b), covariance


def conservation_error(u: ArrayLike, G: ArrayLike, b: ArrayLike) -> Array:
    """`G u - b` per slice: `u` is `(..., n)`, `G` a row `(n,)` (result `(...)`)
    or a matrix `(m, n)` (result `(..., m)`)."""
    u, G = jnp.asarray(u), jnp.asarray(G)
    return u @ G.T.astype(u.dtype) - jnp.asarray(b, u.dtype)  # G.T is G for a row


def mass_weights(x: ArrayLike, *, rule: str = "trapezoid") -> Array:
    """Quadrature weights `g` with `Σ g_i u_i ≈ ∫ u dx` on the sorted points `x`.

    - `"trapezoid"`: `g_i = ½(Δx_{i-1} + Δx_i)`, a zero half-interval beyond each
        end (ProbConserv's weights; integrates over `[x_0, x_{n-1}]`).
    - `"cells"`: the widths of cells centred at `x` with faces halfway between
        points and the outer faces mirrored (`h` on a uniform grid): the mass of
        finite-volume cell averages and the periodic trapezoid rule.
    """
    x = jnp.asarray(x)
    if x.ndim != 1 or x.shape[0] < 2:
        raise ValueError(f"`x` must be a 1D array of >= 2 points, got {x.shape}.")
    dx = jnp.diff(x)
    if not isinstance(dx, jax.core.Tracer) and bool(jnp.any(dx <= 0)):
        raise ValueError("`x` must be strictly increasing.")
    zero = jnp.zeros(1, x.dtype)
    if rule == "trapezoid":
        return 0.5 * (jnp.concatenate([zero, dx]) + jnp.concatenate([dx, zero]))
    if rule == "cells":
        return 0.5 * (jnp.concatenate([dx[:1], dx]) + jnp.concatenate([dx, dx[-1:]]))
    raise ValueError(f"Unknown rule {rule!r}; choose 'trapezoid' or 'cells'.")
