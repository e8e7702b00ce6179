from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ..._custom_types import SpatialField
from ..._solution import RESULTS, Solution
from ...implicit import AbstractIterativeSolver, ImplicitAdjoint, linear_solve
from ...implicit._adjoint import AbstractAdjoint, while_loop
from ...implicit._linear_solve import record, residual_history
from ...implicit._misc import two_norm


def _identity(x):
    return x


class DCDMNet(eqx.Module):
    """The convolutional network of the deep conjugate direction method: a field
    `r (*N) -> q (*N)`, an approximate `A⁻¹ r` up to scale (Kaneda et al. 2023, §4 of
    our fact sheet).

    All convolutions are `3^d`, zero ('same') padding, `width` channels:

    1. a linear convolution `1 -> width`;
    2. `full_convs` ReLU convolutions at full resolution, each odd one from the
        third on adding the output two back (4: the third adds the first's);
    3. `2^d` average pooling, then `coarse_pairs` residual pairs of ReLU
        convolutions (each pair's output added to its input);
    4. ×2 nearest-neighbour upsampling added to the last full-resolution features,
        then `fine_pairs` residual pairs and a linear `1 × 1` head `width -> 1`.

    The defaults are the model the authors trained at 64³: 15 convolutions and a
    head, 97,457 parameters in 3D. `full_convs=6, coarse_pairs=5, fine_pairs=3` is
    their 128³ model (152,881 parameters); where its skips sit is our
    reconstruction. The authors' models are 3D; the 2D model is the same layers
    with 2D convolutions (our choice). Fully convolutional: one model serves any grid
    whose sizes are even.

    **Arguments:**

    - `num_spatial_dims`: 2 or 3.
    - `width`, `full_convs`, `coarse_pairs`, `fine_pairs`: as above.
    - `key`: initialisation key (keyword-only).
    """

    first: eqx.nn.Conv
    full: tuple[eqx.nn.Conv, ...]
    coarse: tuple[eqx.nn.Conv, ...]
    fine: tuple[eqx.nn.Conv, ...]
    head: eqx.nn.Conv
    num_spatial_dims: int = eqx.field(static=True)

    def __init__(
        self,
        num_spatial_dims: int,
        *,
        width: int = 16,
        full_convs: int = 4,
        coarse_pairs: int = 3,
        fine_pairs: int = 2,
        key: PRNGKeyArray,
    ):
        if num_spatial_dims not in (2, 3):
            raise ValueError(
                f"DCDMNet is 2D or 3D, got num_spatial_dims={num_spatial_dims}."
            )
        if min(width, full_convs, coarse_pairs, fine_pairs) < 1:
            raise ValueError(
                "DCDMNet needs at least one channel and one layer of each."
            )
        d = num_spatial_dims
        keys = iter(jr.split(key, 2 + full_convs + 2 * (coarse_pairs + fine_pairs)))

        def conv(cin, cout, size=3):
            # Zero biases, as Keras initialises them (the authors' framework): a
            # random network is then positively homogeneous in its input, and its
            # directions follow the residual instead of repeating the biases'.
            layer = eqx.nn.Conv(d, cin, cout, size, padding=size // 2, key=next(keys))
            return eqx.tree_at(lambda c: c.bias, layer, jnp.zeros_like(layer.bias))

        self.num_spatial_dims = d
        self.first = conv(1, width)
        self.full = tuple(conv(width, width) for _ in range(full_convs))
        self.coarse = tuple(conv(width, width) for _ in range(2 * coarse_pairs))
        self.fine = tuple(conv(width, width) for _ in range(2 * fine_pairs))
        self.head = conv(width, 1, size=1)

    def __call__(self, r: SpatialField) -> SpatialField:
        if r.ndim != self.num_spatial_dims:
            raise ValueError(
                f"This DCDMNet is {self.num_spatial_dims}D but the field has shape "
                f"{r.shape}; use a network of the grid's dimension."
            )
        if any(n % 2 for n in r.shape):
            raise ValueError(
                f"DCDMNet pools by 2 along every axis, so the grid's sizes must be "
                f"even; got {r.shape}. Use an even number of cells per axis."
            )
        h = self.first(r[None])
        features = []
        for i, conv in enumerate(self.full):
            h = jax.nn.relu(conv(h))
            if i >= 2 and i % 2 == 0:
                h = h + features[i - 2]
            features.append(h)
        skip = h
        c = _average_pool(h)
        c = _residual_pairs(self.coarse, c)
        h = skip + _upsample(c)
        h = _residual_pairs(self.fine, h)
        return self.head(h)[0]


def _residual_pairs(convs, h):
    for first, second in zip(convs[::2], convs[1::2], strict=True):
        h = h + jax.nn.relu(second(jax.nn.relu(first(h))))
    return h


def _average_pool(h):
    # (C, *N) -> (C, *N/2)
    shape = [h.shape[0]]
    for n in h.shape[1:]:
        shape += [n // 2, 2]
    return jnp.mean(h.reshape(shape), axis=tuple(range(2, len(shape), 2)))


def _upsample(h):
    for axis in range(1, h.ndim):
        h = jnp.repeat(h, 2, axis=axis)
    return h


class DCDM(AbstractIterativeSolver):
    """The deep conjugate direction method: a truncated conjugate-direction solver
    for symmetric positive (semi)definite `A x = b` whose directions come from a
    network (Kaneda et al., ICML 2023).

    From `x0 = 0` and `r = b`, each iteration

    1. asks the network for a direction `q = f(r / ||r||_2)` (the residual
        normalised to unit 2-norm, as in training);
    2. A-orthogonalises it against the last `window` directions `d_j` by classical
        Gram–Schmidt, `q -= Σ_j (qᵀ A d_j / d_jᵀ A d_j) d_j`, all coefficients from the
        unmodified `q`;
    3. steps to the minimum of the A-norm error along it, `x += (qᵀ r / qᵀ A q) q`;
    4. recomputes the true residual `r = b - A x` (a second matvec);

    and stops at the first iterate with `||b - A x||_2 <= rtol ||b||_2 + atol`, the
    rule of `CG`. `window=2` is the authors' method, `window=0` network steepest
    descent. The A-norm error decreases monotonically; there is no global conjugacy
    and no finite termination. Only the direction of `f(r)` matters, not its scale.
    The network runs in its own dtype (float32 for the shipped weights); dot
    products and the iterate are in `b`'s dtype.

    The method needs a trained network. An untrained `DCDMNet` maps different
    residuals to nearly parallel directions (as deep random ReLU networks do), and
    DCDM then stalls: measured on a 16² box with an obstacle, the relative residual
    stays above 0.9 after 3,000 iterations with three random networks, where CG
    needs 76. Any direction map works in place of the network: the identity gives
    CG's iterates (`window >= 1`), a `Multigrid` V-cycle a flexible MG-PCG.

    Use it as `dp.implicit.linear_solve(operator, b, solver=DCDM(...))` or call it,
    `DCDM(...)(operator, b)`. Gradients with respect to `b` and to anything the
    operator depends on come from `ImplicitAdjoint`: one adjoint solve with the same
    symmetric operator, run by this DCDM with the same `rtol` and `atol` unless the
    adjoint names another solver (`ImplicitAdjoint(linear_solver=dp.implicit.CG())`).
    The network's weights get no gradient through a solve (the solution does not
    depend on them); train them with `dcdm_loss`.

    **Arguments:**

    - `network`: a callable field -> field of the operator's grid shape, usually a
        `DCDMNet`; see `DCDM.pretrained` for shipped weights.
    - `rtol`, `atol`: tolerances of the stopping rule above.
    - `max_steps`: iteration cap (static); default 100, the authors' cap.
    - `window`: how many previous directions each new one is A-orthogonalised
        against (static).
    - `throw`: used when the solver is called directly: raise if the solve fails.
    - `record_history`: also return `stats["residual_history"]`, as for `CG` (the
        true residual norms).

    `Solution.stats` holds `num_steps`, `max_steps` and `residual_norm`. A direction
    with `qᵀ A q <= 0` (the network returned a direction in the null space, or `A`
    is not positive definite) stops the solve with `RESULTS.direction_breakdown`.

    Reference: A. Kaneda, O. Akar, J. Chen, V. A. Trevino Kala, D. Hyde, J. Teran,
    "A Deep Conjugate Direction Method for Iteratively Solving Linear Systems",
    ICML 2023 (arXiv 2205.10763).
    """

    network: Callable[[SpatialField], SpatialField]
    rtol: float = 1e-6
    atol: float = 0.0
    max_steps: int = eqx.field(default=100, static=True)
    window: int = eqx.field(default=2, static=True)
    throw: bool = eqx.field(default=True, static=True)
    record_history: bool = eqx.field(default=False, static=True)

    def __check_init__(self):
        if self.rtol < 0 or self.atol < 0:
            raise ValueError(
                f"Tolerances must be >= 0, got rtol={self.rtol}, atol={self.atol}."
            )
        if self.max_steps < 1:
            raise ValueError(f"`max_steps` must be >= 1, got {self.max_steps}.")
        if self.window < 0:
            raise ValueError(f"`window` must be >= 0, got {self.window}.")
        if not callable(self.network):
            raise ValueError(
                "`network` must be a callable field -> field, for example "
                "dp.solvers.poisson.DCDMNet(...)."
            )

    @classmethod
    def pretrained(
        cls, num_spatial_dims: int, *, box: str | None = None, **solver_options
    ) -> "DCDM":
        """A DCDM solver with network weights shipped inside the package.

        Each network was trained on one empty box (Lanczos/Ritz data, `dcdm_loss`)
        by the command and seed recorded beside its weights
        (`diffphys/solvers/poisson/weights/`, README.md there):

        - `"open-top"` (2D, the default there): the 64² box with solid walls and
            air above, the closed box with an open top of a pressure solve;
        - `"closed"` (2D and 3D, the default in 3D): the closed Neumann box, as
            the authors train; 2D 64², 3D 16³.

        They run on other (even) grid sizes, obstacles and air without
        retraining; how well is measured in README's DCDM rows: the 2D
        `"open-top"` network converges on closed boxes, obstacles and air up to
        128² (counts growing with the grid), the 2D `"closed"` one is better on
        closed boxes but fails with air cells or an air wall.

        **Arguments:**

        - `num_spatial_dims`: 2 or 3.
        - `box`: which training box's network (above); `None` for the default.
        - `solver_options`: `rtol`, `atol`, `max_steps`, `window`, `throw`,
            `record_history`.
        """
        from ._train import load_dcdm_network

        if num_spatial_dims not in (2, 3):
            raise ValueError(
                "Shipped DCDM weights exist for 2D and 3D grids; got "
                f"num_spatial_dims={num_spatial_dims}."
            )
        box = box or ("open-top" if num_spatial_dims == 2 else "closed")
        folder = Path(__file__).parent / "weights" / f"dcdm-{num_spatial_dims}d-{box}"
        if not folder.is_dir():
            shipped = sorted(
                f.name.removeprefix(f"dcdm-{num_spatial_dims}d-")
                for f in folder.parent.glob(f"dcdm-{num_spatial_dims}d-*")
            )
            raise ValueError(
                f"No shipped {num_spatial_dims}D DCDM weights for box={box!r}; "
                f"choose one of {shipped}."
            )
        return cls(load_dcdm_network(folder), **solver_options)

    def __call__(
        self,
        operator: Callable[[SpatialField], SpatialField],
        b: SpatialField,
        *,
        adjoint: AbstractAdjoint = ImplicitAdjoint(),
    ) -> Solution:
        """`dp.implicit.linear_solve(operator, b, self, adjoint=adjoint,
        throw=self.throw)`."""
        return linear_solve(operator, b, self, adjoint=adjoint, throw=self.throw)

    def iterate(self, matvec, b, kind="lax", project=_identity):
        if not isinstance(b, jax.Array) or b.ndim != getattr(
            self.network, "num_spatial_dims", b.ndim
        ):
            shape = getattr(b, "shape", type(b).__name__)
            raise ValueError(
                f"DCDM solves for one field of the network's dimension; got a "
                f"right-hand side {shape} for a network of "
                f"{getattr(self.network, 'num_spatial_dims', '?')} dimensions."
            )
        dtype = b.dtype
        net_dtype = _network_dtype(self.network, dtype)
        w = self.window
        b_norm = two_norm(b)
        tol = self.rtol * b_norm + self.atol
        slots = max(w, 1)
        history = (
            jnp.zeros((slots, *b.shape), dtype),
            jnp.zeros((slots, *b.shape), dtype),
            jnp.ones((slots,), dtype),
        )
        norms = residual_history(b_norm, self.max_steps, self.record_history)
        init = (jnp.zeros_like(b), b, history, b_norm, jnp.array(0), jnp.array(False))
        init = init + (norms,)

        def cond_fun(carry):
            _, _, _, r_norm, _, broken, _ = carry
            return (r_norm > tol) & jnp.isfinite(r_norm) & ~broken

        def body_fun(carry):
            x, r, (d, ad, dad), r_norm, step, _, norms = carry
            unit = (r / r_norm).astype(net_dtype)
            q = project(self.network(unit).astype(dtype))
            if w > 0:
                coefficients = jnp.tensordot(ad, q, axes=q.ndim) / dad
                q = q - jnp.tensordot(coefficients, d, axes=1)
            aq = matvec(q)
            qaq = jnp.vdot(q, aq)
            broken = ~(qaq > 0)
            alpha = jnp.where(broken, 0.0, jnp.vdot(q, r) / jnp.where(broken, 1, qaq))
            x = x + alpha * q
            r = b - matvec(x)
            if w > 0:
                slot = step % w
                d, ad, dad = (
                    d.at[slot].set(q),
                    ad.at[slot].set(aq),
                    dad.at[slot].set(jnp.where(broken, 1, qaq)),
                )
            r_norm = two_norm(r)
            norms = record(norms, step + 1, r_norm)
            return x, r, (d, ad, dad), r_norm, step + 1, broken, norms

        x, r, _, r_norm, num_steps, broken, norms = while_loop(
            cond_fun, body_fun, init, max_steps=self.max_steps, kind=kind
        )
        finite = jnp.isfinite(r_norm) & jnp.all(jnp.isfinite(x))
        result = RESULTS.where(
            ~finite,
            RESULTS.nonfinite_value,
            RESULTS.where(
                broken,
                RESULTS.direction_breakdown,
                RESULTS.where(
                    r_norm > tol, RESULTS.max_steps_reached, RESULTS.successful
                ),
            ),
        )
        stats: dict[str, Any] = {
            "num_steps": num_steps,
            "max_steps": self.max_steps,
            "residual_norm": r_norm,
        }
        if self.record_history:
            stats["residual_history"] = norms
        return x, result, stats


def _network_dtype(network, default):
    leaves = [
        leaf
        for leaf in jax.tree_util.tree_leaves(eqx.filter(network, eqx.is_inexact_array))
    ]
    return leaves[0].dtype if leaves else default


def dcdm_loss(
    network: Callable[[SpatialField], SpatialField],
    operator: Callable[[SpatialField], SpatialField],
    b: Float[Array, " batch *N"],
) -> Float[Array, ""]:
    """The scale-invariant DCDM training loss (Kaneda et al. 2023, §5 of our sheet):

    `L = mean_b || b - α(b) A f(b) ||_2²`,  `α(b) = f(b)ᵀ b / f(b)ᵀ A f(b)`,

    over a batch of unit-norm right-hand sides `b`. `α` is the A-norm-optimal
    scaling of `f(b)` as an approximation of `A⁻¹ b` (the DCDM step), so `L` does not
    change when `f` is multiplied by a constant, and only right-hand sides are needed,
    no solutions.
    """

    def one(rhs):
        f = network(rhs.astype(_network_dtype(network, rhs.dtype))).astype(rhs.dtype)
        af = operator(f)
        alpha = jnp.vdot(f, rhs) / jnp.vdot(f, af)
        return jnp.sum((rhs - alpha * af) ** 2)

    return jnp.mean(jax.vmap(one)(b))
