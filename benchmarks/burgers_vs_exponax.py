"""Throughput of 1D viscous Burgers rollouts: diffphys `BurgersSpectral` against its
anchor, exponax's `Burgers` stepper, measured in the same run.

Same problem for both: 64 smooth initial conditions (random multi-mode Cole–Hopf
data, so the reference is the exact solution), N = 1024 points on [0, 2π), ν = 0.02,
ETDRK2 (the float32 default of both), 2/3 dealiasing, 16 contour points, dt = 0.005,
1000 steps, float32, each code's own jitted `vmap` of its `rollout` (all 1001 frames).
Accuracy is matched and reported: the relative L2 error of the final state against
Cole–Hopf. Time: median of 3 runs after compilation. Prints one JSON line with
sample-steps/s of each and the ratio diffphys / exponax.

Needs exponax: `pip install -e '.[bench]'` (`make bench` does it).
"""

import argparse
import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

import diffphys as dp
from diffphys.solvers.burgers import exact


L, NU, DT = 2 * np.pi, 0.02, 0.005


def initial_conditions(key, batch, n, modes=4):
    """Random Cole–Hopf data: φ = 1 + Σ b_m cos(m x + θ_m), Σ|b_m| = 0.8."""
    kb, kt = jr.split(key)
    b = jr.uniform(kb, (batch, modes), minval=0.1, maxval=1.0)
    b = 0.8 * b / jnp.sum(b, axis=1, keepdims=True)
    phases = jr.uniform(kt, (batch, modes), maxval=2 * np.pi)
    x = jnp.arange(n, dtype=jnp.float64 if jax.config.x64_enabled else float) * L / n

    def solution(t):
        return jnp.stack(
            [
                exact.cole_hopf_modes(
                    x, t, viscosity=NU, a=1.0, b=bi, phases=pi, domain_extent=L
                )
                for bi, pi in zip(b, phases, strict=True)
            ]
        )[:, None]

    return solution


def timed(fn, u0, repeats):
    out = fn(u0)
    out.block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(u0).block_until_ready()
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--num-points", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()
    try:
        import exponax
    except ImportError as e:
        raise SystemExit(
            "this benchmark needs exponax: pip install -e '.[bench]'"
        ) from e

    n, steps = opts.num_points, opts.steps
    solution = initial_conditions(jr.key(0), opts.batch, n)
    u0 = solution(0.0).astype(jnp.float32)
    reference = solution(steps * DT)

    ours = dp.solvers.BurgersSpectral(1, L, n, DT, viscosity=NU, order=2, max_speed=1.0)
    theirs = exponax.stepper.Burgers(
        1, L, n, DT, diffusivity=NU, order=2, single_channel=True
    )
    run_ours = jax.jit(jax.vmap(lambda u: dp.solvers.rollout(ours, u, steps)))
    run_theirs = jax.jit(
        jax.vmap(lambda u: exponax.rollout(theirs, steps, include_init=True)(u))
    )
    results = {}
    for name, run in (("diffphys", run_ours), ("exponax", run_theirs)):
        traj, seconds = timed(run, u0, opts.repeats)
        final = traj[:, -1].astype(reference.dtype)
        error = jnp.linalg.norm(final - reference) / jnp.linalg.norm(reference)
        results[name] = {
            "seconds": seconds,
            "sample_steps_per_s": opts.batch * steps / seconds,
            "relative_l2_error": float(error),
        }
    device = jax.devices()[0]
    print(
        json.dumps(
            {
                "benchmark": "burgers_vs_exponax",
                "anchor": f"exponax {exponax.__version__} stepper.Burgers",
                "backend": jax.default_backend(),
                "device": getattr(device, "device_kind", str(device)),
                "machine": platform.machine(),
                "jax": jax.__version__,
                "diffphys": dp.__version__,
                "problem": {
                    "batch": opts.batch,
                    "num_points": n,
                    "steps": steps,
                    "dt": DT,
                    "viscosity": NU,
                    "order": 2,
                    "dtype": "float32",
                },
                "results": results,
                "ratio_diffphys_over_exponax": results["diffphys"]["sample_steps_per_s"]
                / results["exponax"]["sample_steps_per_s"],
            }
        )
    )


if __name__ == "__main__":
    main()
