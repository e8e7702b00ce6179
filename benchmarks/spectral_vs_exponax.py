"""Throughput of spectral rollouts: diffphys's spectral engine against its anchor,
exponax, on the same problems in the same run: 1D viscous Burgers, 1D
Kuramoto–Sivashinsky and 2D Navier–Stokes (vorticity).

Each case: a batch of initial states, float32, ETDRK2 (the float32 default of both),
2/3 dealiasing, 16 contour points, the same dt; each code's own jitted `vmap` of its
rollout (every frame kept). Time: the best of `--repeats` runs after compilation,
the two codes' runs interleaved (single runs varied by tens of percent on a shared
VM), reported as sample-steps/s. Accuracy is matched and reported for each code: the
relative L2 error of its final state against a reference of its own, the same
scheme at dt/8 (for Burgers, also against the exact Cole–Hopf solution), and the
relative difference between the two codes' final states.

- burgers: 64 random multi-mode Cole–Hopf data, N = 1024 on [0, 2π), ν = 0.02,
  dt = 0.005, 1000 steps (exponax `Burgers`);
- ks: 64 truncated-Fourier data (cutoff 5, max 1), N = 256 on [0, 60) (exponax's
  documented chaotic size), dt = 0.1, 200 steps for the errors (t = 20, before
  chaos amplifies the schemes' differences), 2000 for the time (exponax
  `KuramotoSivashinskyConservative`);
- ns: 16 Gaussian random vorticity fields (|k|^-4 spectrum, max 4), N = 128 on
  [0, 2π)², ν = 1e-3, dt = 0.002, 200 steps (exponax `NavierStokesVorticity`;
  at dt = 0.01 ETDRK2's growth of the advective modes outruns the viscous damping
  and both codes blow up). exponax transports ω by minus the velocity of the
  usual convention (its `(∂_y Δ⁻¹ω, −∂_x Δ⁻¹ω)` has curl −ω), so its solution from
  −ω₀ is minus ours from ω₀: the codes are compared that way. It also keeps one
  mode fewer under the 2/3 rule (|k| <= 41 of 64 against our 42).

Prints one JSON line with each case's figures and `ratio_diffphys_over_exponax`
(sample-steps/s) per case. Needs exponax: `pip install -e '.[bench]'`.
"""

import argparse
import json
import platform
import time

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

import diffphys as dp
from diffphys.solvers.burgers import exact


S = dp.solvers


def cole_hopf_data(key, batch, n, *, viscosity, length):
    """Random Cole–Hopf data, φ = 1 + Σ b_m cos(m x + θ_m) with Σ|b_m| = 0.8; returns
    `solution(t)` `(batch, 1, n)`."""
    kb, kt = jr.split(key)
    b = jr.uniform(kb, (batch, 4), minval=0.1, maxval=1.0)
    b = 0.8 * b / jnp.sum(b, axis=1, keepdims=True)
    phases = jr.uniform(kt, (batch, 4), maxval=2 * np.pi)
    x = jnp.arange(n, dtype=jnp.float64 if jax.config.x64_enabled else float)
    x = x * length / n

    def solution(t):
        return jnp.stack(
            [
                exact.cole_hopf_modes(
                    x, t, viscosity=viscosity, a=1.0, b=bi, phases=pi,
                    domain_extent=length,
                )
                for bi, pi in zip(b, phases, strict=True)
            ]
        )[:, None]  # fmt: skip

    return solution


def case(name, batch, exponax):
    """`(ours(dt), theirs(dt), u0, steps, dt, extra)` of one benchmark case."""
    key = jr.key({"burgers": 0, "ks": 1, "ns": 2}[name])
    if name == "burgers":
        length, n, nu, dt, steps = 2 * np.pi, 1024, 0.02, 0.005, 1000
        solution = cole_hopf_data(key, batch, n, viscosity=nu, length=length)
        return (
            lambda h: S.BurgersSpectral(1, length, n, h, viscosity=nu, max_speed=1.0),
            lambda h: exponax.stepper.Burgers(
                1, length, n, h, diffusivity=nu, order=2, single_channel=True
            ),
            solution(0.0),
            steps,
            dt,
            {"exact": solution(steps * dt)},
        )
    if name == "ks":
        length, n, dt, steps = 60.0, 256, 0.1, 200
        ic = dp.datasets.RandomTruncatedFourier(1, cutoff=5)
        u0 = jax.vmap(lambda k: ic(n, key=k))(jr.split(key, batch))
        return (
            lambda h: S.KuramotoSivashinsky(1, length, n, h, max_speed=4.0),
            lambda h: exponax.stepper.KuramotoSivashinskyConservative(
                1, length, n, h, order=2
            ),
            u0,
            steps,
            dt,
            {},
        )
    length, n, nu, dt, steps = 2 * np.pi, 128, 1e-3, 0.002, 200
    ic = dp.datasets.GaussianRandomField(2, powerlaw_exponent=4.0)
    u0 = 4 * jax.vmap(lambda k: ic(n, key=k))(jr.split(key, batch))
    return (
        lambda h: S.NavierStokesVorticity(2, length, n, h, viscosity=nu, max_speed=3.0),
        lambda h: exponax.stepper.NavierStokesVorticity(
            2, length, n, h, diffusivity=nu, order=2
        ),
        u0,
        steps,
        dt,
        {},
    )


def runner(stepper, steps, theirs, exponax, save_every=1):
    if theirs:
        # exponax's rollout applies the stepper `steps` times; for the references
        # every `save_every`-th frame is the same time as ours.
        def one(u):
            frames = exponax.rollout(stepper, steps * save_every, include_init=True)(u)
            return frames[::save_every]
    else:

        def one(u):
            return S.rollout(stepper, u, steps, save_every=save_every)

    return jax.jit(jax.vmap(one))


def interleaved(runs, repeats):
    """The best wall time of each `(fn, u0)` in `runs` over `repeats` rounds, the
    runs taken in turn in each round (after a warm-up call each)."""
    for fn, u0 in runs:
        fn(u0).block_until_ready()
    best = [float("inf")] * len(runs)
    for _ in range(repeats):
        for i, (fn, u0) in enumerate(runs):
            start = time.perf_counter()
            fn(u0).block_until_ready()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def relative(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def run_case(name, batch, repeats, exponax):
    make_ours, make_theirs, u0, steps, dt, extra = case(name, batch, exponax)
    u0 = jnp.asarray(u0, jnp.float32)
    # exponax's vorticity is minus ours (see the module's docstring).
    sign = -1.0 if name == "ns" else 1.0
    timed_steps = 10 * steps if name == "ks" else steps  # KS runs are short
    out, finals, runs = {}, {}, []
    for who, make in (("diffphys", make_ours), ("exponax", make_theirs)):
        theirs = who == "exponax"
        start = sign * u0 if theirs else u0
        traj = runner(make(dt), steps, theirs, exponax)(start)
        fine = runner(make(dt / 8), steps, theirs, exponax, save_every=8)(start)
        finals[who] = sign * traj[:, -1] if theirs else traj[:, -1]
        out[who] = {
            "relative_error_vs_own_dt_over_8": relative(traj[:, -1], fine[:, -1])
        }
        if "exact" in extra:
            out[who]["relative_error_vs_exact"] = relative(traj[:, -1], extra["exact"])
        runs.append((runner(make(dt), timed_steps, theirs, exponax), start))
    for who, seconds in zip(out, interleaved(runs, repeats), strict=True):
        out[who]["seconds"] = seconds
        out[who]["sample_steps_per_s"] = u0.shape[0] * timed_steps / seconds
    out["relative_difference_between_codes"] = relative(
        finals["diffphys"], finals["exponax"]
    )
    out["problem"] = {
        "batch": int(u0.shape[0]),
        "shape": list(u0.shape[1:]),
        "dt": dt,
        "steps": steps,
        "timed_steps": timed_steps,
        "order": 2,
        "dtype": "float32",
    }
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="burgers,ks,ns")
    parser.add_argument("--batch", type=int, default=64, help="(ns: a quarter)")
    parser.add_argument("--repeats", type=int, default=5)
    opts = parser.parse_args()
    try:
        import exponax
    except ImportError as e:
        raise SystemExit(
            "this benchmark needs exponax: pip install -e '.[bench]'"
        ) from e
    results = {}
    for name in opts.cases.split(","):
        batch = opts.batch // 4 if name == "ns" else opts.batch
        results[name] = run_case(name, batch, opts.repeats, exponax)
    device = jax.devices()[0]
    print(
        json.dumps(
            {
                "benchmark": "spectral_vs_exponax",
                "anchor": f"exponax {exponax.__version__} (Burgers, "
                "KuramotoSivashinskyConservative, NavierStokesVorticity)",
                "backend": jax.default_backend(),
                "device": getattr(device, "device_kind", str(device)),
                "machine": platform.machine(),
                "jax": jax.__version__,
                "diffphys": dp.__version__,
                "results": results,
                "ratio_diffphys_over_exponax": {
                    name: r["diffphys"]["sample_steps_per_s"]
                    / r["exponax"]["sample_steps_per_s"]
                    for name, r in results.items()
                },
            }
        )
    )


if __name__ == "__main__":
    main()
