"""Exponential time differencing Runge–Kutta integrators for the semi-linear
`v_t = L v + N(v, t)` in Fourier space, `L` diagonal (a symbol per mode).

Each order is a small final module that precomputes its coefficients once, at
construction, from `z = dt L` by the contour-integral mean of Kassam & Trefethen
(2005); `step(v, t, nonlinear)` then costs only the nonlinear evaluations. The
schemes are those of Cox & Matthews (2002): ETDRK1 is exponential Euler, ETDRK2 the
two-stage scheme, ETDRK3 and ETDRK4 their third- and fourth-order schemes.
"""

import abc
import functools
from collections.abc import Callable

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp

from .._custom_types import Array, ScalarLike


Nonlinear = Callable[[Array, ScalarLike], Array]


def phi_functions(z, num_circle_points: int, circle_radius: float, max_order: int):
    """`φ_1(z) ... φ_max_order(z)` (`φ_0 = e^z`, `φ_{j+1} = (φ_j - 1/j!) / z`) by the
    mean over `num_circle_points` points on a circle of radius `circle_radius` around
    each `z` (Kassam & Trefethen 2005), free of cancellation near `z = 0`. Real `z`
    gives real values; complex `z` (dispersive or advective symbols) complex ones."""
    real = not jnp.iscomplexobj(z)
    m = jnp.arange(1, num_circle_points + 1, dtype=jnp.real(z).dtype)
    angle = jnp.pi * (m - 0.5) / num_circle_points
    roots = circle_radius * lax.complex(jnp.cos(angle), jnp.sin(angle))
    zc = z.astype(roots.dtype)[..., None] + roots.reshape((1,) * z.ndim + (-1,))
    phis, phi, factorial = [], jnp.exp(zc), 1.0
    for j in range(1, max_order + 1):
        phi = (phi - 1.0 / factorial) / zc
        factorial *= j
        mean = jnp.mean(phi, axis=-1)
        phis.append(mean.real.astype(z.dtype) if real else mean)
    return phis


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _coefficients(dt, linear, order: int, num_circle_points: int, radius: float):
    """Every coefficient the scheme of `order` uses, from `z = dt L`, in one
    compiled computation (one compilation per grid shape, not one per operation)."""
    z = dt * linear
    if order <= 2:
        phis = phi_functions(z, num_circle_points, radius, order)
        out = {"exp": jnp.exp(z), "phi1": dt * phis[0]}
        if order == 2:
            out["phi2"] = dt * phis[1]
        return out
    phi1, phi2, phi3 = phi_functions(z, num_circle_points, radius, 3)
    (half,) = phi_functions(z / 2, num_circle_points, radius, 1)
    return {
        "exp": jnp.exp(z),
        "exp_half": jnp.exp(z / 2),
        "half_phi1": dt / 2 * half,
        "phi1": dt * phi1,
        "f1": dt * (phi1 - 3 * phi2 + 4 * phi3),
        "f2": dt * (phi2 - 2 * phi3),
        "f3": dt * (4 * phi3 - phi2),
    }


class AbstractETDRK(eqx.Module):
    """One step of an ETDRK scheme: `step(v, t, nonlinear) -> v_next` with
    `nonlinear(w, time) -> N(w, time)`, all in Fourier space."""

    dt: eqx.AbstractVar[float]

    @abc.abstractmethod
    def step(self, v: Array, t: ScalarLike, nonlinear: Nonlinear) -> Array:
        """Advance `v` at time `t` by `dt`."""


def _cast(c: Array, v: Array) -> Array:
    return c.astype(v.dtype)


class ETDRK1(AbstractETDRK):
    """Exponential Euler: `v⁺ = e^z v + dt φ₁(z) N(v)`; first order."""

    dt: float = eqx.field(static=True)
    exp: Array
    phi1: Array

    def __init__(self, dt, linear, *, num_circle_points=16, circle_radius=1.0):
        c = _coefficients(dt, linear, 1, num_circle_points, circle_radius)
        self.dt = float(dt)
        self.exp, self.phi1 = c["exp"], c["phi1"]

    def step(self, v, t, nonlinear):
        return _cast(self.exp, v) * v + _cast(self.phi1, v) * nonlinear(v, t)


class ETDRK2(AbstractETDRK):
    """Cox–Matthews ETDRK2: an exponential Euler predictor `a`, then
    `v⁺ = a + dt φ₂(z) (N(a) - N(v))`; second order."""

    dt: float = eqx.field(static=True)
    exp: Array
    phi1: Array
    phi2: Array

    def __init__(self, dt, linear, *, num_circle_points=16, circle_radius=1.0):
        c = _coefficients(dt, linear, 2, num_circle_points, circle_radius)
        self.dt = float(dt)
        self.exp, self.phi1, self.phi2 = c["exp"], c["phi1"], c["phi2"]

    def step(self, v, t, nonlinear):
        nv = nonlinear(v, t)
        a = _cast(self.exp, v) * v + _cast(self.phi1, v) * nv
        return a + _cast(self.phi2, v) * (nonlinear(a, t + self.dt) - nv)


class ETDRK3(AbstractETDRK):
    """Cox–Matthews ETDRK3 (their eq. 26); third order."""

    dt: float = eqx.field(static=True)
    coefficients: dict[str, Array]

    def __init__(self, dt, linear, *, num_circle_points=16, circle_radius=1.0):
        # The half-step exponential Euler (`e^{z/2}`, `dt/2 φ₁(z/2)`), `e^z`, and the
        # Cox–Matthews weights `f₁ = dt(φ₁ - 3φ₂ + 4φ₃)`, `f₂ = dt(φ₂ - 2φ₃)`,
        # `f₃ = dt(4φ₃ - φ₂)`, shared by ETDRK3 and ETDRK4.
        self.dt = float(dt)
        self.coefficients = _coefficients(
            dt, linear, 3, num_circle_points, circle_radius
        )

    def step(self, v, t, nonlinear):
        c, h = {k: _cast(x, v) for k, x in self.coefficients.items()}, self.dt
        exp, exp_half, half_phi1 = c["exp"], c["exp_half"], c["half_phi1"]
        phi1, f1, f2, f3 = c["phi1"], c["f1"], c["f2"], c["f3"]
        nv = nonlinear(v, t)
        a = exp_half * v + half_phi1 * nv
        na = nonlinear(a, t + h / 2)
        b = exp * v + phi1 * (2 * na - nv)
        return exp * v + f1 * nv + 4 * f2 * na + f3 * nonlinear(b, t + h)


class ETDRK4(AbstractETDRK):
    """Cox–Matthews ETDRK4 (their eq. 26–29), with Kassam–Trefethen coefficients;
    fourth order."""

    dt: float = eqx.field(static=True)
    coefficients: dict[str, Array]

    def __init__(self, dt, linear, *, num_circle_points=16, circle_radius=1.0):
        # The half-step exponential Euler (`e^{z/2}`, `dt/2 φ₁(z/2)`), `e^z`, and the
        # Cox–Matthews weights `f₁ = dt(φ₁ - 3φ₂ + 4φ₃)`, `f₂ = dt(φ₂ - 2φ₃)`,
        # `f₃ = dt(4φ₃ - φ₂)`, shared by ETDRK3 and ETDRK4.
        self.dt = float(dt)
        self.coefficients = _coefficients(
            dt, linear, 3, num_circle_points, circle_radius
        )

    def step(self, v, t, nonlinear):
        c, h = {k: _cast(x, v) for k, x in self.coefficients.items()}, self.dt
        exp, exp_half, half_phi1 = c["exp"], c["exp_half"], c["half_phi1"]
        f1, f2, f3 = c["f1"], c["f2"], c["f3"]
        nv = nonlinear(v, t)
        a = exp_half * v + half_phi1 * nv
        na = nonlinear(a, t + h / 2)
        b = exp_half * v + half_phi1 * na
        nb = nonlinear(b, t + h / 2)
        cc = exp_half * a + half_phi1 * (2 * nb - nv)
        return exp * v + f1 * nv + 2 * f2 * (na + nb) + f3 * nonlinear(cc, t + h)


ETDRK = {1: ETDRK1, 2: ETDRK2, 3: ETDRK3, 4: ETDRK4}


def etdrk(order: int, dt: float, linear: Array, **options) -> AbstractETDRK:
    """The ETDRK integrator of `order` (1–4) for the symbol `linear`."""
    if order not in ETDRK:
        raise ValueError(f"`order` must be 1, 2, 3 or 4, got {order}.")
    return ETDRK[order](dt, linear, **options)
