from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import lineax as lx
from jaxtyping import Array, Float

from ..._solution import RESULTS
from ...implicit import AbstractRootFinder
from ...implicit._adjoint import while_loop


def soc_product(
    u: Float[Array, "*K 3"], w: Float[Array, "*K 3"]
) -> Float[Array, "*K 3"]:
    """The Jordan product of the second-order cone, `u ∘ w = (uᵀw, u₀ w₁ + w₀ u₁)`."""
    return jnp.concatenate(
        [
            jnp.sum(u * w, -1, keepdims=True),
            u[..., :1] * w[..., 1:] + w[..., :1] * u[..., 1:],
        ],
        -1,
    )


def orthant_step(y, dy, tau):
    """The largest `α <= 1` with `y + α dy >= (1 - τ) y`: `min(1, min -τ y/dy)` over
    the entries with `dy < 0`."""
    ratios = jnp.where(dy < 0, -tau * y / jnp.where(dy < 0, dy, -1.0), jnp.inf)
    return jnp.minimum(1.0, jnp.min(ratios, initial=jnp.inf))


def soc_step(lam: Float[Array, "K 3"], d: Float[Array, "K 3"], tau) -> Array:
    """The fraction-to-boundary step along `d` from the interior points `lam` of
    second-order cones: `τ` times the largest feasible step, at most 1
    (CVXOPT's formula, as Dojo uses it)."""
    lam0, lam1 = lam[:, 0], lam[:, 1:]
    d0, d1 = d[:, 0], d[:, 1:]
    det = lam0**2 - jnp.sum(lam1**2, -1)
    root = jnp.sqrt(det)
    dot = lam0 * d0 - jnp.sum(lam1 * d1, -1)
    rho_s = dot / det
    rho_v = (
        d1 / root[:, None]
        - ((dot / root + d0) / (lam0 / root + 1) / det)[:, None] * lam1
    )
    norm_v = jnp.linalg.norm(rho_v, axis=-1)
    alpha = jnp.where(
        norm_v > rho_s, tau / jnp.where(norm_v > rho_s, norm_v - rho_s, 1.0), 1.0
    )
    return jnp.minimum(1.0, jnp.min(alpha, initial=jnp.inf))


class InteriorPoint(AbstractRootFinder):
    """A primal–dual interior-point method for complementarity-form residuals, as
    a `dp.implicit.root_find` solver (the contact step's; Dojo's, Howell et al.
    2022, §5 of our fact sheet).

    The unknowns `y` (a flat vector) are `[free (n), a (m), b (m), u (k, 3),
    w (k, 3)]`: `a, b >= 0` orthant pairs and `u, w` second-order-cone pairs
    `‖·₁‖ <= ·₀`. The residual `F(y)` is `[equalities, a b, u ∘ w]`: the equality
    rows, then the *unrelaxed* complementarity products. The method solves
    `F(y) = κ ê` (`ê` the cones' identities) while `κ -> 0`:

    - each cone pair starts at `1.5 ê` (cold start), the free part at `y0`;
    - Mehrotra predictor–corrector: an affine step for `κ = 0`, the centring
        `σ = (ν_aff/ν)³` with `ν` the mean complementarity, then one corrected step
        with the same LU factorisation of the dense Jacobian (`jax.jacfwd`);
    - fraction-to-boundary step lengths (`τ = max(0.95, 1 - max(r, c)²)` in the
        orthants, `0.95` in the cones) and up to 10 halvings until the equality
        violation `r = ‖equalities‖∞` and the complementarity `c = max ‖a b‖∞,
        ‖u ∘ w‖∞` do not both grow;
    - where the corrected step is shorter than `jam` (next to a cone's boundary),
        a pure centring step (`κ = ν`) instead (ours, not Dojo's);
    - stop when `r < rtol` and `c < btol`;
    - if that fails within `max_steps`, path following from the cold start in
        the same loop (at most `fallback_steps` more iterations; ours, see
        `_mehrotra`): with friction the problem is not monotone and Mehrotra's
        steps can cycle, measured in docs/design-decisions.md.

    With `kappa` set it instead solves `F(y) = κ ê` for that fixed `κ` by Newton's
    method from `y0` (which must be interior), with the same step rules, until
    `‖F(y) - κ ê‖∞ < rtol`: the relaxation that `ContactStepper(kappa_grad=...)`
    differentiates at.

    Not ported from Dojo: its anti-stall "undercut" (unused at its default of ∞)
    and its ‖ω‖ guard (the quaternion map's root is floored instead, so a trial
    step past it is rejected by the line search). Regularisation: `1e-10` on the
    free block's and the orthant products' diagonals.

    **Arguments:**

    - `num_free`, `num_orthant`, `num_soc`: the layout above (static).
    - `rtol`, `btol`: tolerances of the equality rows and of the products.
    - `max_steps`: iterations at most (static); default 50, Dojo's.
    - `jam`: the step length below which a corrected step gives way to centring.
    - `fallback_steps`: iterations of the path-following fallback (static; 0: none).
    - `kappa`: `None` (Mehrotra to `κ -> 0`) or the fixed relaxation.
    """

    num_free: int = eqx.field(static=True)
    num_orthant: int = eqx.field(static=True)
    num_soc: int = eqx.field(static=True)
    rtol: float = 1e-10
    btol: float | Array = 1e-10
    max_steps: int = eqx.field(default=50, static=True)
    kappa: float | None = None
    jam: float = 0.1
    fallback_steps: int = eqx.field(default=0, static=True)
    # The implicit adjoint's solver (the iterations factor the Jacobian themselves).
    linear_solver: lx.AbstractLinearSolver = lx.LU()

    @property
    def num_equalities(self) -> int:
        return self.num_free + self.num_orthant + 3 * self.num_soc

    def split(self, y):
        """`(free, a, b, u, w)` of a flat `y`."""
        n, m, k = self.num_free, self.num_orthant, self.num_soc
        free, a, b, u, w = jnp.split(y, [n, n + m, n + 2 * m, n + 2 * m + 3 * k])
        return free, a, b, u.reshape(k, 3), w.reshape(k, 3)

    def identity(self, dtype) -> Array:
        """`ê`: ones on the orthant products, `(1, 0, 0)` on the cones' rows."""
        cone = jnp.tile(jnp.array([1.0, 0.0, 0.0], dtype), self.num_soc)
        return jnp.concatenate(
            [
                jnp.zeros(self.num_equalities, dtype),
                jnp.ones(self.num_orthant, dtype),
                cone,
            ]
        )

    def _violations(self, f):
        r = jnp.max(jnp.abs(f[: self.num_equalities]), initial=0.0)
        c = jnp.max(jnp.abs(f[self.num_equalities :]), initial=0.0)
        return r, c

    def _mean_complementarity(self, y):
        _, a, b, u, w = self.split(y)
        return (a @ b + jnp.sum(u * w)) / max(self.num_orthant + self.num_soc, 1)

    def _step_length(self, y, dy, tau_orthant, tau_soc):
        _, a, b, u, w = self.split(y)
        _, da, db, du, dw = self.split(dy)
        alpha = jnp.minimum(
            orthant_step(a, da, tau_orthant), orthant_step(b, db, tau_orthant)
        )
        if self.num_soc:
            alpha = jnp.minimum(alpha, soc_step(u, du, tau_soc))
            alpha = jnp.minimum(alpha, soc_step(w, dw, tau_soc))
        return alpha

    def _jacobian(self, fn, y, args):
        jac = jax.jacfwd(fn)(y, args)
        n, m = self.num_free, self.num_orthant
        diagonal = jnp.zeros(y.shape[0], y.dtype).at[:n].set(1e-10)
        jac = jac + jnp.diag(diagonal)
        rows = self.num_equalities + jnp.arange(m)
        jac = jac.at[rows, n + jnp.arange(m)].add(1e-10)
        return jac.at[rows, n + m + jnp.arange(m)].add(1e-10)

    def initial(self, y0):
        """`y0` with every cone pair reset to `1.5 ê`."""
        free, a, b, u, w = self.split(y0)
        cone = jnp.zeros_like(u).at[:, 0].set(1.5)
        return jnp.concatenate(
            [
                free,
                jnp.full_like(a, 1.5),
                jnp.full_like(b, 1.5),
                cone.ravel(),
                cone.ravel(),
            ]
        )

    def run(self, fn, y0, args, tags, kind):
        del tags
        if self.kappa is None:
            return self._mehrotra(fn, self.initial(y0), args, kind)
        return self._relax(fn, y0, args, kind)

    def _mehrotra(self, fn, y0, args, kind):
        """Mehrotra's iterations, then (where they fail within `max_steps`) path
        following from the cold start `y0`, in one loop: the two share the
        Jacobian, its factorisation and the line search, so a step compiles once.

        Path following (ours): Newton on `F(y) = κ ê` with a line search on
        `‖F - κ ê‖₂`, `κ` cut tenfold (from 0.1 down to `btol / 10`) whenever
        `‖F - κ ê‖∞ < κ / 10`. It is the fallback where Mehrotra's steps cycle
        (with friction the relaxed problem is not monotone)."""
        e = self.identity(y0.dtype)
        eq = self.num_equalities
        f0 = fn(y0, args)
        floor = self.btol / 10

        def cond_fun(carry):
            _, _, r, c, _, follow, _ = carry
            done = (r < self.rtol) & (c < self.btol)
            # A non-finite Mehrotra iterate hands over to path following.
            return ~done & (~follow | jnp.isfinite(r + c))

        def body_fun(carry):
            y, f, r, c, step, follow, kappa_follow = carry
            restart = ~follow & ((step >= self.max_steps) | ~jnp.isfinite(r + c))
            y, f = jnp.where(restart, y0, y), jnp.where(restart, f0, f)
            r = jnp.where(restart, violations0[0], r)
            c = jnp.where(restart, violations0[1], c)
            follow = follow | restart
            kappa_follow = jnp.where(restart, 0.1, kappa_follow)

            lu = jsl.lu_factor(self._jacobian(fn, y, args))
            affine = jsl.lu_solve(lu, -f)
            alpha = self._step_length(y, affine, 0.95, 0.95)
            nu = self._mean_complementarity(y)
            nu_affine = self._mean_complementarity(y + alpha * affine)
            sigma = jnp.clip(nu_affine / nu, 0.0, 1.0) ** 3
            _, da, db, du, dw = self.split(affine)
            second = jnp.concatenate(
                [jnp.zeros(eq, y.dtype), da * db, soc_product(du, dw).ravel()]
            )
            dy = jsl.lu_solve(lu, -(f - sigma * nu * e) - second)
            tau = jnp.where(follow, 0.95, jnp.maximum(0.95, 1 - jnp.maximum(r, c) ** 2))
            tau_soc = jnp.minimum(tau, 0.95)
            alpha = self._step_length(y, dy, tau, tau_soc)
            # A pure centring step where the corrected step jams next to a cone's
            # boundary (measured in docs/design-decisions.md); path following's
            # Newton step has the same form with its own target.
            target = jnp.where(follow, kappa_follow, nu)
            centring = jsl.lu_solve(lu, -(f - target * e))
            use_centring = follow | (alpha < self.jam)
            dy = jnp.where(use_centring, centring, dy)
            alpha = jnp.where(
                use_centring, self._step_length(y, centring, tau, tau_soc), alpha
            )
            merit = jnp.sum((f - kappa_follow * e) ** 2)

            def trial(alpha):
                y_new = y + alpha * dy
                f_new = fn(y_new, args)
                return y_new, f_new, *self._violations(f_new)

            def search_cond(carry):
                _, (_, f_new, r_new, c_new), j = carry
                worse = jnp.where(
                    follow,
                    ~(jnp.sum((f_new - kappa_follow * e) ** 2) < merit),
                    ((r_new > r) & (c_new > c)) | ~jnp.isfinite(r_new + c_new),
                )
                return worse & (j < 10)

            def search_body(carry):
                alpha, _, j = carry
                return alpha / 2, trial(alpha / 2), j + 1

            _, (y, f, r, c), _ = jax.lax.while_loop(
                search_cond, search_body, (alpha, trial(alpha), 0)
            )
            near = jnp.max(jnp.abs(f - kappa_follow * e)) < kappa_follow / 10
            kappa_follow = jnp.where(
                follow & near, jnp.maximum(kappa_follow / 10, floor), kappa_follow
            )
            return y, f, r, c, step + 1, follow, kappa_follow

        violations0 = self._violations(f0)
        y, f, r, c, steps, _, _ = while_loop(
            cond_fun,
            body_fun,
            (
                y0,
                f0,
                *violations0,
                jnp.array(0),
                jnp.array(False),
                jnp.asarray(0.1, y0.dtype),
            ),
            max_steps=self.max_steps + self.fallback_steps,
            kind=kind,
        )
        return y, self._result(r, c, self.btol), self._stats(steps, r, c)

    def _relax(self, fn, y0, args, kind):
        e = self.identity(y0.dtype)

        def residual(y):
            return fn(y, args) - self.kappa * e

        def norm(f):
            return jnp.max(jnp.abs(f))

        def cond_fun(carry):
            _, f, _ = carry
            return (norm(f) >= self.rtol) & jnp.isfinite(norm(f))

        def body_fun(carry):
            y, f, step = carry
            dy = jnp.linalg.solve(self._jacobian(fn, y, args), -f)
            alpha = self._step_length(y, dy, 0.95, 0.95)

            def search_cond(carry):
                _, f_trial, j = carry
                return ~(norm(f_trial) < norm(f)) & (j < 10)

            def search_body(carry):
                alpha, _, j = carry
                return alpha / 2, residual(y + alpha / 2 * dy), j + 1

            alpha, f_trial, _ = jax.lax.while_loop(
                search_cond, search_body, (alpha, residual(y + alpha * dy), 0)
            )
            return y + alpha * dy, f_trial, step + 1

        y, f, steps = while_loop(
            cond_fun,
            body_fun,
            (y0, residual(y0), jnp.array(0)),
            max_steps=self.max_steps,
            kind=kind,
        )
        r, c = self._violations(f)
        return y, self._result(r, c, self.rtol), self._stats(steps, r, c)

    def _result(self, r, c, ctol):
        return RESULTS.where(
            ~jnp.isfinite(r + c),
            RESULTS.nonfinite_value,
            RESULTS.where(
                (r < self.rtol) & (c < ctol),
                RESULTS.successful,
                RESULTS.nonlinear_max_steps_reached,
            ),
        )

    def _stats(self, steps, r, c) -> dict[str, Any]:
        return {
            "num_steps": steps,
            "max_steps": self.max_steps,
            "residual_norm": r,
            "complementarity": c,
        }
