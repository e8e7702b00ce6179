from collections.abc import Callable

import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ..._custom_types import SpatialField


def ritz_pairs(
    operator: Callable[[SpatialField], SpatialField],
    shape: tuple[int, ...],
    num_steps: int,
    *,
    key: PRNGKeyArray,
    dtype=None,
    project: Callable[[SpatialField], SpatialField] | None = None,
    null_tol: float = 1e-8,
) -> tuple[Float[Array, " m"], Float[Array, " m *N"]]:
    """Ritz values and vectors of a symmetric operator from `num_steps` Lanczos
    steps with full re-orthogonalisation (the DCDM data recipe, §6 of our sheet).

    Lanczos starts from `v = A x`, `x ~ N(0, I)`, so the Krylov space stays in the
    range of `A` (a closed box's constant null space is never entered); every new
    basis vector is orthogonalised against all previous ones twice (classical
    Gram–Schmidt, repeated), so the basis stays orthonormal to round-off. The
    eigendecomposition of the tridiagonal `T = QᵀAQ` gives the Ritz values in
    ascending order and the Ritz vectors `Q s`. Ritz values at most
    `null_tol * max` (the null space) are dropped. With `num_steps` equal to the
    number of unknowns the Ritz values are the eigenvalues of `A` on its range.

    **Arguments:**

    - `operator`: `A`, a callable on fields of `shape`, symmetric.
    - `shape`: the grid shape.
    - `num_steps`: `m`, the Lanczos steps (the authors use 10,000 at 64³; the basis
        costs `m × size` floats).
    - `key`: keyword-only, for the starting vector.
    - `dtype`: of the computation; default the default float dtype (use float64
        where enabled: the Ritz vectors come out in it).
    - `project`: optional projection onto the unknowns (`FluidPoisson.project`),
        applied to the start vector.

    **Returns:**

    `(values (k,), vectors (k, *shape))`, `k <= m`, vectors of unit 2-norm.
    """
    dtype = jnp.zeros(()).dtype if dtype is None else dtype
    size = 1
    for n in shape:
        size *= n
    if not 1 <= num_steps <= size:
        raise ValueError(
            f"`num_steps` must be between 1 and the number of cells ({size}), got "
            f"{num_steps}."
        )

    def matvec(v):
        return operator(v.reshape(shape)).reshape(-1)

    start = jr.normal(key, shape, dtype)
    if project is not None:
        start = project(start)
    v = matvec(start.reshape(-1))
    v = v / jnp.linalg.norm(v)
    basis = jnp.zeros((num_steps, size), dtype).at[0].set(v)

    def step(j, carry):
        basis, alphas, betas = carry
        q = basis[j]
        w = matvec(q)
        alphas = alphas.at[j].set(jnp.vdot(q, w))
        # Full re-orthogonalisation against the rows filled so far (the others are
        # zero), twice ("twice is enough", Parlett).
        for _ in range(2):
            w = w - basis.T @ (basis @ w)
        beta = jnp.linalg.norm(w)
        betas = betas.at[j].set(beta)
        nxt = jnp.where(beta > 0, w / jnp.where(beta > 0, beta, 1), 0)
        basis = lax.dynamic_update_index_in_dim(basis, nxt, j + 1, 0)
        return basis, alphas, betas

    basis = jnp.concatenate([basis, jnp.zeros((1, size), dtype)])
    basis, alphas, betas = lax.fori_loop(
        0,
        num_steps,
        step,
        (basis, jnp.zeros(num_steps, dtype), jnp.zeros(num_steps, dtype)),
    )
    basis = basis[:num_steps]
    tridiagonal = jnp.diag(alphas) + jnp.diag(betas[:-1], 1) + jnp.diag(betas[:-1], -1)
    values, vectors = jnp.linalg.eigh(tridiagonal)
    ritz = (basis.T @ vectors).T
    keep = values > null_tol * jnp.max(values)
    values, ritz = jax.device_get((values, ritz))
    keep = jax.device_get(keep)
    return jnp.asarray(values[keep]), jnp.asarray(ritz[keep].reshape(-1, *shape))


def ritz_training_data(
    values: Float[Array, " k"],
    vectors: Float[Array, " k *N"],
    num_samples: int,
    *,
    key: PRNGKeyArray,
    num_boosted: int | None = None,
    boost: float = 9.0,
    dtype=jnp.float32,
) -> Float[Array, " num_samples *N"]:
    """Unit-norm training right-hand sides for DCDM from Ritz pairs (§6 of our sheet).

    Each sample is `Σ_i c_i v_i` with `c_i ~ N(0, 1)`, the coefficients of the
    `num_boosted` lowest Ritz values multiplied by `boost`, normalised to unit
    2-norm: the data leans to the smooth, slowly converging modes that `A⁻¹`
    amplifies most. The authors use `m = 10,000` Ritz vectors, `num_boosted =
    m/2 + 500` and `boost = 9`; the default `num_boosted` is `k/2 + k/20`, the same
    fraction for any `k`.

    **Arguments:**

    - `values`, `vectors`: from `ritz_pairs` (ascending values).
    - `num_samples`: how many right-hand sides.
    - `key`: keyword-only.
    - `num_boosted`, `boost`: as above.
    - `dtype`: of the returned samples (float32, as the authors store them).
    """
    k = values.shape[0]
    if vectors.shape[0] != k:
        raise ValueError(
            f"{k} Ritz values but {vectors.shape[0]} vectors; pass both from "
            "ritz_pairs."
        )
    num_boosted = k // 2 + k // 20 if num_boosted is None else num_boosted
    if not 0 <= num_boosted <= k:
        raise ValueError(f"`num_boosted` must be between 0 and {k}, got {num_boosted}.")
    weights = jnp.where(jnp.arange(k) < num_boosted, boost, 1.0).astype(vectors.dtype)
    coefficients = jr.normal(key, (num_samples, k), vectors.dtype) * weights[None]
    samples = coefficients @ vectors.reshape(k, -1)
    samples = samples / jnp.linalg.norm(samples, axis=1, keepdims=True)
    return samples.reshape(num_samples, *vectors.shape[1:]).astype(dtype)
