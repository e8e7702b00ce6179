"""The scenarios of the PDEs learned solvers are benchmarked on: Kuramoto–Sivashinsky
(`ks`, `ks-2d`), 2D Navier–Stokes in vorticity form (`ns-2d`), PDEBench's
diffusion–sorption (`diffusion-sorption`) and the FNO paper's steady Darcy flow
(`darcy`). Each states where its defaults come from."""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from ..solvers import (
    Darcy,
    DiffusionSorption,
    KuramotoSivashinsky,
    NavierStokesVorticity,
)
from ._initial_conditions import RandomTruncatedFourier, ThresholdedGaussianField
from ._scenarios import Parameter, register_scenario, SavedField, Scenario


_HYPER = Parameter(
    "1.0",
    0.0,
    low_open=True,
    description="coefficient b of u_xxxx (u_t + u u_x + u_xx + b u_xxxx = 0); the "
    "equation with b on [0, L) is the one with b = 1 on [0, L/√b), so drawing b "
    "draws the domain length, the bifurcation parameter",
)
# KuramotoSivashinsky's advection-speed promise (measured maxima: 3.4 for |u| in
# 1D at L = 60, 5.0 for |∇u| in 2D at L = 30) and the step: ETDRK2 at Courant
# number 1 against that bound (it ran stably at 4-7 on those cases).
_KS_SPEED = 5.0


def _ks_max_dt(L, N, **_):
    return min(0.1, L / N / _KS_SPEED)


def _ks(d):
    return lambda L, N, dt, *, hyper_diffusion: KuramotoSivashinsky(
        d, L, N, dt, hyper_diffusion=hyper_diffusion, max_speed=_KS_SPEED
    )


register_scenario(
    Scenario(
        name="ks",
        description="1D Kuramoto–Sivashinsky u_t + u u_x + u_xx + u_xxxx = 0 "
        "(conservative form), chaotic; pseudo-spectral ETDRK2, started on the "
        "attractor",
        num_spatial_dims=1,
        make_stepper=_ks(1),
        initial_condition=RandomTruncatedFourier(1, cutoff=5),
        max_dt=_ks_max_dt,
        parameters={"hyper_diffusion": _HYPER},
        fields=(SavedField("u", 0, (0,)),),
        domain_extent=60.0,
        num_points=128,
        num_steps=200,
        frame_interval=0.5,
        warmup=100.0,
        conserved=(0,),
        defaults_from="exponax's KS values (L = 60, chaotic; dt = 0.1) and "
        "APEBench's initial data (truncated Fourier series, cutoff 5, max 1) after "
        "100 time units of warm-up onto the attractor; N = 128, 200 frames 0.5 "
        "apart: ours",
    )
)

register_scenario(
    Scenario(
        name="ks-2d",
        description="2D Kuramoto–Sivashinsky u_t + ½|∇u|² + Δu + Δ²u = 0 "
        "(combustion form; its gradient obeys the vector conservative form), "
        "chaotic; pseudo-spectral ETDRK2, started on the attractor",
        num_spatial_dims=2,
        make_stepper=_ks(2),
        initial_condition=RandomTruncatedFourier(2, cutoff=3),
        max_dt=_ks_max_dt,
        parameters={"hyper_diffusion": _HYPER},
        fields=(SavedField("u", 0, (0,)),),
        domain_extent=30.0,
        num_points=64,
        num_steps=100,
        frame_interval=0.5,
        warmup=50.0,
        conserved=(0,),
        defaults_from="ours (L = 30: chaotic in 2D, Kalogirou et al. 2015); "
        "truncated Fourier data (cutoff 3) after 50 time units of warm-up",
    )
)


# ---------------------------------------------------------------------------------
# 2D Navier–Stokes: the FNO paper's setting (Li et al., ICLR 2021, §5.3): the unit
# torus, ν = 1e-3, forcing 0.1 (sin 2π(x + y) + cos 2π(x + y)), a Gaussian random
# initial vorticity, 50 frames 1 s apart. HC-MoE's (ν = 1e-4, no forcing, T = 5)
# is `--param nu=1e-4 --param forcing=0 --num-steps 5`.

_NS_ALPHA, _NS_TAU = 2.5, 7.0
_NS_SPEED = 2.0  # a bound on |u|, generous (max |u| < 0.5 on the default data)


def fno_vorticity(num_points: int, *, key):
    """The FNO paper's initial vorticity: a Gaussian random field on the unit
    torus with covariance `7^{3/2} (−Δ + 49 I)^{−5/2}`, in the amplitude convention
    of its generator (square-root eigenvalues `√2 τ^{(2α−d)/2} (4π²|k|² +
    τ²)^{−α/2}` times a standard complex normal per mode, the real part of the sum;
    zero mean): a standard deviation of about 0.3, which the forcing then raises
    to O(1). Reconstructed from the paper and the public generator as we recall
    it, not run against it: the amplitude convention is unverified."""
    k = np.fft.fftfreq(num_points, 1.0 / num_points)
    kx, ky = np.meshgrid(k, k, indexing="ij")
    sigma = np.sqrt(2) * _NS_TAU ** ((2 * _NS_ALPHA - 2) / 2)
    root = sigma * (4 * np.pi**2 * (kx**2 + ky**2) + _NS_TAU**2) ** (-_NS_ALPHA / 2)
    root[0, 0] = 0.0
    real, imag = jr.normal(key, (2, num_points, num_points))
    noise = jax.lax.complex(real, imag)
    coefficients = jnp.asarray(root * num_points**2, noise.dtype) * noise
    return jnp.real(jnp.fft.ifft2(coefficients))[None]


def fno_forcing(domain_extent: float, num_points: int):
    """`sin 2π(x + y) + cos 2π(x + y)` on `[0, L)²` (`L = 1` in the FNO paper)."""
    x = np.arange(num_points) * domain_extent / num_points
    s = 2 * np.pi * (x[:, None] + x[None, :]) / domain_extent
    return jnp.asarray((np.sin(s) + np.cos(s))[None])


register_scenario(
    Scenario(
        name="ns-2d",
        description="2D incompressible Navier–Stokes in vorticity form, ω_t + u·∇ω "
        "= ν Δω − α ω + f, on the unit torus; pseudo-spectral ETDRK2",
        num_spatial_dims=2,
        make_stepper=lambda L, N, dt, *, nu, forcing, drag: NavierStokesVorticity(
            2,
            L,
            N,
            dt,
            viscosity=nu,
            drag=drag,
            forcing=forcing * fno_forcing(L, N),
            max_speed=_NS_SPEED,
        ),
        initial_condition=fno_vorticity,
        max_dt=lambda L, N, **_: min(0.01, L / N / _NS_SPEED),
        parameters={
            "nu": Parameter(
                "1e-3", 0.0, low_open=True, description="kinematic viscosity ν"
            ),
            "forcing": Parameter(
                "0.1",
                0.0,
                description="amplitude A of the forcing A (sin 2π(x + y) + "
                "cos 2π(x + y)) (0: decaying turbulence)",
            ),
            "drag": Parameter("0", 0.0, description="linear drag α"),
        },
        fields=(SavedField("vorticity", 0, (0,)),),
        num_points=64,
        num_steps=50,
        frame_interval=1.0,
        conserved=(0,),
        defaults_from="the FNO paper's Navier–Stokes data (Li et al. 2021): unit "
        "torus, 64², ν = 1e-3, forcing 0.1 (sin + cos) 2π(x + y), GRF initial "
        "vorticity 7^{3/2}(−Δ + 49)^{−5/2}, 50 frames 1 s apart",
    )
)


# ---------------------------------------------------------------------------------
# Diffusion–sorption: PDEBench's recipe (Takamoto et al. 2022; the generator
# sim_diff_sorp.py): [0, 1], 1024 cells, 101 frames 5 s apart, constant initial
# data U(0, 0.2), D = 5e-4, φ = 0.29, ρ_s = 2880, k_f = 3.5e-4, n_f = 0.874.

_DS_DT = 0.1  # TR-BDF2: max error 7e-6 against a converged reference (measured)


def _ds_initial(num_points: int, *, key):
    # U(0, 0.2) as PDEBench, bounded away from 0, where R(u) is singular.
    value = jr.uniform(key, (), minval=1e-6, maxval=0.2)
    return jnp.full((1, num_points), value)


register_scenario(
    Scenario(
        name="diffusion-sorption",
        description="1D diffusion–sorption u_t = D / R(u) u_xx (Freundlich "
        "isotherm), u(0) = 1, u(1) = −D u_x(1); conservative finite volumes, TR-BDF2",
        num_spatial_dims=1,
        make_stepper=lambda L, N, dt, *, D, porosity, density, k_f, n_f: (
            DiffusionSorption(
                1,
                L,
                N,
                dt,
                diffusivity=D,
                porosity=porosity,
                density=density,
                freundlich_k=k_f,
                freundlich_n=n_f,
            )
        ),
        initial_condition=_ds_initial,
        max_dt=lambda L, N, **_: _DS_DT,
        parameters={
            "D": Parameter("5e-4", 0.0, low_open=True, description="diffusivity D"),
            "porosity": Parameter(
                "0.29",
                0.0,
                1.0,
                low_open=True,
                high_open=True,
                description="porosity φ",
            ),
            "density": Parameter("2880", 0.0, description="dry bulk density ρ_s"),
            "k_f": Parameter("3.5e-4", 0.0, description="Freundlich parameter k_f"),
            "n_f": Parameter(
                "0.874", 0.0, low_open=True, description="Freundlich exponent n_f"
            ),
        },
        fields=(SavedField("u", 0, (0,)),),
        boundary="open",
        num_points=1024,
        num_steps=100,
        frame_interval=5.0,
        conserved=(0,),
        pdebench_layout="per-sample",
        defaults_from="PDEBench's diffusion–sorption recipe (Takamoto et al. 2022, "
        "its generator sim_diff_sorp.py): [0, 1], 1024 cells, 101 frames 5 s "
        "apart, constant initial data U(0, 0.2) (here from 1e-6), its constants",
    )
)


# ---------------------------------------------------------------------------------
# Darcy: the FNO paper's steady benchmark (Li et al. 2021, §5.2): −∇·(a∇u) = f on
# the unit square, u = 0 on its boundary, f = 1, a = 12 or 3 by the sign of a GRF
# (−Δ + 9)^{−2}; the grid of its files holds the boundary nodes (85 = 421 / 5).

register_scenario(
    Scenario(
        name="darcy",
        description="steady 2D Darcy flow −∇·(a ∇u) = f on the unit square, u = 0 "
        "on its boundary, two-valued random a; PCG through dp.implicit.linear_solve",
        num_spatial_dims=2,
        make_stepper=lambda L, N, dt, *, force: Darcy(N, L, source=force),
        initial_condition=ThresholdedGaussianField(),
        max_dt=lambda L, N, **_: 1.0,
        parameters={
            "force": Parameter(
                "1.0",
                0.0,
                low_open=True,
                description="the constant source f (PDEBench's β)",
                pdebench_name="beta",
            )
        },
        fields=(SavedField("u", 0, (0,)),),
        constant_fields=(SavedField("a", 0, (0,)),),
        steady=True,
        boundary="wall",
        vertices=True,
        num_points=85,
        num_steps=0,
        frame_interval=1.0,
        conserved=(),
        defaults_from="the FNO paper's Darcy data (Li et al. 2021, §5.2): unit "
        "square with its boundary nodes, 85² (421 subsampled by 5), f = 1, a = 12 "
        "or 3 by the sign of a GRF with covariance (−Δ + 9)^{−2}",
    )
)
