"""Training modes: how a window of data becomes a loss.

Notation: `f` the trainable model, `u_0 … u_K` a window of saved frames, `P` the
dataset's reference solver over one frame interval, `S` a coarse solver.

- `one`: `ℓ(f(u_0), u_1)`.
- `sup-K`: `(1/K) Σ_k ℓ(f^k(u_0), u_k)`, unrolled; `tbptt=M` stops gradients
  between states every `M` steps (truncated backpropagation through time).
- `div-K` (diverted chain, APEBench): `û_0 = u_0`, `û_k = f(û_{k−1})`,
  `(1/K) Σ_k ℓ(f(û_{k−1}), P(û_{k−1}))`: the differentiable reference solver is
  applied to the model's own states; gradients flow through both branches.
- `correction[-K]` (solver-in-the-loop, Um et al. 2020): the step is
  `v = S(û_{k−1}); û_k = v + f(v)`, unrolled over `K` (default 1) frames against the
  data; gradients flow through the solver (an implicit solver's step by the
  implicit function theorem, one adjoint solve).
"""

import re
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp


class Mode(eqx.Module):
    """A parsed training mode: `kind` in one/sup/div/correction and `horizon` K."""

    kind: str = eqx.field(static=True)
    horizon: int = eqx.field(static=True)

    @property
    def needs_reference(self) -> bool:
        return self.kind == "div"

    def __str__(self):
        if self.kind == "one":
            return "one"
        if self.kind == "correction" and self.horizon == 1:
            return "correction"
        return f"{self.kind}-{self.horizon}"


def parse_mode(spec: str) -> Mode:
    """`one`, `sup-K`, `div-K`, `correction` or `correction-K` (K >= 1)."""
    text = str(spec).strip()
    if text == "one":
        return Mode("one", 1)
    if text == "correction":
        return Mode("correction", 1)
    match = re.fullmatch(r"(sup|div|correction)-(\d+)", text)
    if not match or int(match.group(2)) < 1:
        raise ValueError(
            f"Unknown training mode {spec!r}; write one, sup-K, div-K, correction or "
            "correction-K with an integer K >= 1 (e.g. sup-8)."
        )
    return Mode(match.group(1), int(match.group(2)))


def unroll(
    mode: Mode,
    step: Callable,
    window,
    *,
    loss: Callable,
    reference: Callable | None = None,
    tbptt: int | None = None,
):
    """The mean loss of one window `(K + 1, C, *N)` under `mode`, and the model's
    input states `(K, C, *N)` (for Jacobian penalties).

    `step(u) -> (u_next, model_input)`: one model step (for `correction` it runs the
    coarse solver first); `reference(u)`: the reference solver (for `div`).
    """
    horizon = mode.horizon
    if window.shape[0] < horizon + 1:
        raise ValueError(
            f"Mode {mode} needs windows of {horizon + 1} frames, got {window.shape[0]}."
        )

    def body(carry, k):
        u, total = carry
        if tbptt is not None:
            u = jax.lax.cond(
                (k % tbptt == 0) & (k > 0), jax.lax.stop_gradient, lambda x: x, u
            )
        nxt, model_input = step(u)
        target = reference(u) if mode.kind == "div" else window[k + 1]
        return (nxt, total + loss(nxt, target)), model_input

    (_, total), inputs = jax.lax.scan(
        body, (window[0], jnp.zeros((), window.dtype)), jnp.arange(horizon)
    )
    return total / horizon, inputs
