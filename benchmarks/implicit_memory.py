"""Peak memory and time of a reverse-mode gradient through an implicit layer,
`ImplicitAdjoint` against its anchor `UnrolledAdjoint` (backprop through the
iterations), measured in the same run.

Anchors: `UnrolledAdjoint()` (plain backprop, every iterate stored) and
`UnrolledAdjoint(checkpointed=True)` (equinox's recursively checkpointed loop).

(a) CG solve of the 2D variable-coefficient Poisson problem -∇·(κ∇u) = f, 256x256
    unknowns, gradient with respect to κ, at 50 and 500 CG steps.
(b) Newton solve of the nonlinear diffusion steady state -∇·(κ q(∇u)) = f with
    q(g) = g + g³ (an SPD Jacobian, so CG solves the Newton systems), 128x128
    unknowns, 5 Newton steps with 50 or 500 inner CG steps.
(c) A rollout of an explicit stepper, differentiated by backprop: 2D vector
    Burgers (`BurgersSpectral`, ETDRK2) on 256x256, 1000 saved steps, gradient of
    the last frame's energy with respect to the initial state; anchor plain
    backprop through `lax.scan` (`checkpoint=False`) against √T checkpointing
    (`checkpoint=True`).

The forward CG tolerance is rtol 1e-6, which the full-size problems do not reach
within either budget, so each forward solve runs its whole budget (the JSON records
the CG steps the Poisson forward took). Zero tolerances are avoided on purpose:
unrolled CG run past round-off convergence divides by a vanishing r·z and its
gradient turns NaN. The adjoint CG of `ImplicitAdjoint` runs to rtol 1e-5 (it must
converge, or the backward pass raises). Memory is
XLA's compiled peak (arguments + outputs + temporaries, `memory_analysis()`), which
is deterministic and the same on CPU and GPU; time is the median wall time of a
jitted gradient after compilation. Prints one JSON line.

Usage: python benchmarks/implicit_memory.py [--small]
"""

import argparse
import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import lineax as lx

import diffphys as dp


FORWARD_RTOL = 1e-6
SPD = frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})


def _fields(n):
    x, y = dp.solvers.poisson.DiffusionOperator(jnp.ones((n, n)), 1.0).grid()
    kappa = 1.0 + 0.5 * jnp.sin(6.0 * x) * jnp.cos(5.0 * y)
    source = 10.0 * jnp.exp(-((x - 0.4) ** 2 + (y - 0.6) ** 2) / 0.05)
    return kappa, source


def poisson_loss(n, steps, adjoint):
    _, source = _fields(n)
    solver = dp.implicit.CG(rtol=FORWARD_RTOL, max_steps=steps)

    def loss(kappa):
        operator = dp.solvers.poisson.DiffusionOperator(kappa, 1.0)
        sol = dp.implicit.linear_solve(
            operator, source, solver, adjoint=adjoint, throw=False
        )
        return jnp.sum(sol.value**2)

    return loss


def _nonlinear_residual(u, args):
    kappa, source = args
    operator = dp.solvers.poisson.DiffusionOperator(kappa, 1.0, flux=_flux)
    return operator(u) - source


def _flux(g):
    return g + g**3


def newton_loss(n, steps, adjoint):
    _, source = _fields(n)
    solver = dp.implicit.Newton(
        rtol=1e-30,
        max_steps=5,
        linear_solver=dp.implicit.CG(rtol=FORWARD_RTOL, max_steps=steps),
    )

    def loss(kappa):
        sol = dp.implicit.root_find(
            _nonlinear_residual,
            jnp.zeros_like(source),
            (kappa, source),
            solver,
            adjoint=adjoint,
            tags=SPD,
            throw=False,
        )
        return jnp.sum(sol.value**2)

    return loss


def rollout_loss(n, steps, checkpoint):
    stepper = dp.solvers.BurgersSpectral(
        2, 1.0, n, 0.2 / n, viscosity=0.02, max_speed=1.5
    )

    def loss(u0):
        frames = dp.solvers.rollout(stepper, u0, steps, checkpoint=checkpoint)
        return jnp.sum(frames[-1] ** 2)

    return loss


def _initial_velocity(n):
    x, y = jnp.meshgrid(*2 * [jnp.arange(n) / n], indexing="ij")
    two_pi = 2 * jnp.pi
    return jnp.stack(
        [jnp.sin(two_pi * x) * jnp.cos(two_pi * y), 0.5 * jnp.cos(two_pi * (x + y))]
    )


def measure(loss, argument, repeats):
    grad = jax.jit(jax.grad(loss))
    compiled = grad.lower(argument).compile()
    analysis = compiled.memory_analysis()
    peak = (
        analysis.argument_size_in_bytes
        + analysis.output_size_in_bytes
        + analysis.temp_size_in_bytes
        - analysis.alias_size_in_bytes
    )
    compiled(argument).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = compiled(argument)
        out.block_until_ready()
        times.append(time.perf_counter() - start)
    if not bool(jnp.all(jnp.isfinite(out))):
        raise RuntimeError("non-finite gradient in the benchmark")
    return {"peak_mib": peak / 2**20, "seconds": statistics.median(times)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small", action="store_true", help="64x64 / 32x32 grids, 100 steps"
    )
    parser.add_argument("--repeats", type=int, default=5)
    opts = parser.parse_args()
    sizes = {
        "poisson_cg": 64 if opts.small else 256,
        "newton_cg": 32 if opts.small else 128,
    }
    builders = {"poisson_cg": poisson_loss, "newton_cg": newton_loss}
    budgets = (50, 500)
    adjoint_cg = dp.implicit.CG(rtol=1e-5, max_steps=10_000)
    adjoints = {
        "implicit": dp.implicit.ImplicitAdjoint(linear_solver=adjoint_cg),
        "unrolled": dp.implicit.UnrolledAdjoint(),
        "unrolled_checkpointed": dp.implicit.UnrolledAdjoint(checkpointed=True),
    }
    cases, ratios = {}, {}
    for problem, build in builders.items():
        n = sizes[problem]
        kappa, source = _fields(n)
        row = {}
        for name, adjoint in adjoints.items():
            for steps in budgets:
                key = f"{name}_{steps}"
                row[key] = measure(build(n, steps, adjoint), kappa, opts.repeats)
        cases[problem] = {"grid": [n, n], **row}
        if problem == "poisson_cg":
            operator = dp.solvers.poisson.DiffusionOperator(kappa, 1.0)
            for steps in budgets:
                solver = dp.implicit.CG(rtol=FORWARD_RTOL, max_steps=steps)
                sol = dp.implicit.linear_solve(operator, source, solver, throw=False)
                cases[problem][f"forward_cg_steps_{steps}"] = int(
                    sol.stats["num_steps"]
                )
        for name in adjoints:
            ratios[f"{problem}_{name}_mem_500_over_50"] = (
                row[f"{name}_500"]["peak_mib"] / row[f"{name}_50"]["peak_mib"]
            )
        for steps in budgets:
            for anchor in ("unrolled", "unrolled_checkpointed"):
                for quantity, field in (("mem", "peak_mib"), ("time", "seconds")):
                    ratios[f"{problem}_{quantity}_implicit_over_{anchor}_{steps}"] = (
                        row[f"implicit_{steps}"][field]
                        / row[f"{anchor}_{steps}"][field]
                    )
    n, steps = (64, 100) if opts.small else (256, 1000)
    u0 = _initial_velocity(n)
    row = {
        name: measure(rollout_loss(n, steps, checkpoint), u0, min(opts.repeats, 3))
        for name, checkpoint in (("backprop", False), ("checkpointed", True))
    }
    cases["rollout_burgers_2d"] = {"grid": [n, n], "steps": steps, **row}
    for quantity, field in (("mem", "peak_mib"), ("time", "seconds")):
        ratios[f"rollout_{quantity}_checkpointed_over_backprop"] = (
            row["checkpointed"][field] / row["backprop"][field]
        )
    device = jax.devices()[0]
    print(
        json.dumps(
            {
                "benchmark": "implicit_memory",
                "anchor": "UnrolledAdjoint: plain backprop through the iterations "
                "(and its checkpointed variant); for the rollout, plain backprop "
                "through lax.scan",
                "backend": jax.default_backend(),
                "device": getattr(device, "device_kind", str(device)),
                "machine": platform.machine(),
                "dtype": str(jnp.zeros(()).dtype),
                "jax": jax.__version__,
                "diffphys": dp.__version__,
                "cases": cases,
                "ratios": {k: round(v, 4) for k, v in ratios.items()},
                "goal_implicit_mem_500_over_50_max": 1.2,
            }
        )
    )


if __name__ == "__main__":
    main()
