"""Pressure-Poisson solves: DCDM with the shipped weights against multigrid-
preconditioned CG, measured in the same run.

Anchor: pyamg's smoothed-aggregation AMG as the preconditioner of CG (one V-cycle per
iteration, pyamg's defaults; CPU, NumPy), on the same matrix, assembled from the
same flags. Also: CG, Jacobi-PCG and our geometric MG-PCG (`dp.solvers.poisson.
Multigrid`), all on `FluidPoisson` in float64, and DCDM (`DCDM.pretrained`, network
in float32, iterate in float64).

Problems: 2D 128², 256², 512² and 3D 32³, 64³ (`--small`: 2D 64², 128², 3D 16³,
32³); an empty box (solid walls, air above the top wall: the closed box with an
open top of the fact sheet's §7.4) and a box with a solid sphere and an air layer
inside it (walls solid); random (Gaussian) and smooth (four low sine modes and 1 %
noise) right-hand sides; stopping at ||b - A x|| <= rtol ||b|| with rtol 1e-4 (the
paper's) and 1e-6. The networks are `DCDM.pretrained`'s defaults: 2D trained on
the empty 64² box with an open top (the "empty" scene at 64²), 3D on the empty
closed 16³ box: every obstacle scene and every larger grid is unseen.

Printed: a table of iterations, setup seconds and solve seconds (compiled ahead;
median of up to 3 calls within 2 s) per method and case, then one JSON line
with DCDM's iteration growth over the sizes (largest / smallest, per dimension and
geometry, worst case; null where DCDM hit its cap of 100 iterations, the authors'),
how many DCDM solves did not converge, MG-PCG's largest count at 1e-6, and the
ratios of DCDM's and MG-PCG's wall time to AMG-PCG's at the largest 3D size (setup
+ solve, summed over its cases). DCDM runs once per case to 1e-6; its 1e-4 row
is read from that run's residual history (see `run_case`).

Usage: python benchmarks/dcdm_poisson.py [--small]  (needs the [bench] extra: pyamg)
"""

import argparse
import json
import platform
import statistics
import time

import equinox as eqx
import jax


jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402
import numpy as np  # noqa: E402
import pyamg  # noqa: E402
import scipy.sparse as sp  # noqa: E402

import diffphys as dp  # noqa: E402


P = dp.solvers.poisson
# The authors' cap (their test script); a network call costs about as much as
# 100 matvecs, so an unconverged DCDM solve is the longest part of a case.
DCDM_CAP = 100
RTOLS = (1e-4, 1e-6)


def scene(kind, n, d):
    flags = np.full((n,) * d, P.FLUID, np.int32)
    walls = [("solid", "solid")] * d
    if kind == "empty":
        walls[-1] = ("solid", "air")
    else:
        centres = (np.arange(n) + 0.5) / n
        grid = np.meshgrid(*([centres] * d), indexing="ij")
        centre = [0.5] * (d - 1) + [0.4]
        inside = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) < 0.2**2
        flags[inside] = P.SOLID
        flags[..., int(0.9 * n) :] = P.AIR
    return flags, tuple(walls)


def right_hand_side(kind, op, key):
    shape = op.flags.shape
    if kind == "random":
        b = jr.normal(key, shape)
    else:
        x = op.cell_centres()
        b = sum(
            jnp.prod(
                jnp.stack([jnp.sin((k + a) * jnp.pi * xi) for a, xi in enumerate(x)]), 0
            )
            for k in range(1, 5)
        )
        b = b + 0.01 * jnp.std(b) * jr.normal(key, shape)
    return op.prepare_rhs(b)


def assemble(flags, walls, spacings):
    """The matrix of `FluidPoisson(flags, walls=walls)` (κ = 1) on its fluid cells,
    as SciPy CSR, assembled independently from the flags: for each fluid cell and
    face, a fluid neighbour couples (-1/h², and +1/h² on the diagonal), air adds
    1/h² to the diagonal (p = 0 there), solid adds nothing."""
    fluid = flags == P.FLUID
    index = -np.ones(flags.shape, np.int64)
    index[fluid] = np.arange(fluid.sum())
    wall_flag = {"solid": P.SOLID, "air": P.AIR}
    rows, cols, vals = [], [], []
    diagonal = np.zeros(flags.shape)
    for axis, h in enumerate(spacings):
        for side, offset in enumerate((-1, 1)):
            pad = [(0, 0)] * flags.ndim
            pad[axis] = (1, 1)
            padded = np.pad(flags, pad, constant_values=wall_flag[walls[axis][side]])
            other = np.take(
                padded, np.arange(flags.shape[axis]) + 1 + offset, axis=axis
            )
            padded_index = np.pad(index, pad, constant_values=-1)
            other_index = np.take(
                padded_index, np.arange(flags.shape[axis]) + 1 + offset, axis=axis
            )
            open_face = fluid & (other != P.SOLID)
            diagonal += open_face / h**2
            couple = fluid & (other == P.FLUID)
            rows.append(index[couple])
            cols.append(other_index[couple])
            vals.append(np.full(int(couple.sum()), -1 / h**2))
    rows.append(index[fluid])
    cols.append(index[fluid])
    vals.append(diagonal[fluid])
    n = int(fluid.sum())
    matrix = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), (n, n)
    )
    return matrix, fluid


def timed(fn, budget_s=2.0, repeats=3):
    """Median wall time of `repeats` calls, or of fewer when they take longer than
    `budget_s` in all (compile first: see `compiled`)."""
    times = []
    while len(times) < repeats and sum(times) < budget_s:
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def compiled(fn, *args):
    """`fn` compiled ahead of time for `args` (no warm-up call to pay for)."""
    run = fn.lower(*args).compile()
    return lambda: jax.block_until_ready(run(*args))


make_multigrid = eqx.filter_jit(P.Multigrid)


@eqx.filter_jit
def solve(op, b, solver):
    return dp.implicit.linear_solve(op, b, solver, throw=False)


def summary(iterations, setup, seconds, residual, rtol):
    return {
        "iterations": int(iterations),
        "setup_s": setup,
        "solve_s": seconds,
        "converged": bool(residual <= rtol),
        "relative_residual": float(residual),
    }


def run_case(d, n, geometry, rhs_kind, rtols, networks):
    """{rtol: {method: summary}} for one grid, geometry and right-hand side.

    DCDM runs once, to the smallest rtol with its residual history (a network call
    costs as much as about 100 matvecs); its rows at the larger rtols are read
    from that history: the first iteration below each tolerance, and that many
    iterations' share of the run's time (its iterations cost the same)."""
    flags, walls = scene(geometry, n, d)
    op = P.FluidPoisson(jnp.asarray(flags), walls=walls)
    b = right_hand_side(rhs_kind, op, jr.key(0))
    b_norm = float(jnp.linalg.norm(b))
    mg, mg_setup = timed(compiled(make_multigrid, op))
    results = {rtol: {} for rtol in rtols}
    for rtol in rtols:
        solvers = {
            "CG": (dp.implicit.CG(rtol=rtol, max_steps=20000), 0.0),
            "Jacobi-PCG": (
                dp.implicit.PCG(
                    dp.implicit.Jacobi(op.diagonal()), rtol=rtol, max_steps=20000
                ),
                0.0,
            ),
            "MG-PCG": (dp.implicit.PCG(mg, rtol=rtol, max_steps=500), mg_setup),
        }
        for name, (solver, setup) in solvers.items():
            sol, seconds = timed(compiled(solve, op, b, solver))
            residual = float(jnp.linalg.norm(b - op(sol.value))) / b_norm
            results[rtol][name] = summary(
                sol.stats["num_steps"], setup, seconds, residual, rtol
            )
    dcdm = P.DCDM(networks[d], rtol=min(rtols), max_steps=DCDM_CAP, record_history=True)
    sol, seconds = timed(compiled(solve, op, b, dcdm))
    history = np.asarray(sol.stats["residual_history"]) / b_norm
    done = int(sol.stats["num_steps"])
    for rtol in rtols:
        below = np.flatnonzero(history[: done + 1] <= rtol)
        steps = int(below[0]) if below.size else done
        results[rtol]["DCDM"] = summary(
            steps, 0.0, seconds * steps / done, history[steps], rtol
        )
    matrix, fluid = assemble(flags, walls, op.spacings)
    probe = np.asarray(jr.normal(jr.key(1), flags.shape))
    check = matrix @ probe[fluid] - np.asarray(op(jnp.asarray(probe)))[fluid]
    assert np.abs(check).max() < 1e-8 * np.abs(matrix @ probe[fluid]).max()
    rhs = np.asarray(b)[fluid]
    start = time.perf_counter()
    amg = pyamg.smoothed_aggregation_solver(matrix)
    amg_setup = time.perf_counter() - start
    for rtol in rtols:
        residuals = []

        def amg_solve(rtol=rtol, residuals=residuals):
            residuals.clear()
            return amg.solve(
                rhs, tol=rtol, accel="cg", maxiter=500, residuals=residuals
            )

        x, seconds = timed(amg_solve)
        residual = np.linalg.norm(rhs - matrix @ x) / np.linalg.norm(rhs)
        results[rtol]["AMG-PCG (pyamg)"] = summary(
            len(residuals) - 1, amg_setup, seconds, residual, rtol
        )
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    sizes = (
        {2: [64, 128], 3: [16, 32]} if args.small else {2: [128, 256, 512], 3: [32, 64]}
    )
    networks = {d: P.DCDM.pretrained(d).network for d in (2, 3)}
    rows = []
    header = f"{'case':38s} {'method':16s} {'iter':>5s} {'setup s':>8s} {'solve s':>8s}"
    print(header)
    for d, ns in sizes.items():
        for n in ns:
            for geometry in ("empty", "obstacle"):
                for rhs_kind in ("random", "smooth"):
                    results = run_case(d, n, geometry, rhs_kind, RTOLS, networks)
                    for rtol in RTOLS:
                        case = f"{d}D {n}^{d} {geometry} {rhs_kind} {rtol:g}"
                        for method, r in results[rtol].items():
                            flag = "" if r["converged"] else " (not converged)"
                            print(
                                f"{case:38s} {method:16s} {r['iterations']:5d} "
                                f"{r['setup_s']:8.3f} {r['solve_s']:8.3f}{flag}",
                                flush=True,
                            )
                            rows.append(
                                dict(
                                    d=d,
                                    n=n,
                                    geometry=geometry,
                                    rhs=rhs_kind,
                                    rtol=rtol,
                                    method=method,
                                    **r,
                                )
                            )
    # Growth of DCDM's count from the smallest to the largest size of a dimension,
    # worst over the cases; None where a solve hit the cap (no count to compare).
    dcdm = {
        (r["d"], r["n"], r["geometry"], r["rhs"], r["rtol"]): r
        for r in rows
        if r["method"] == "DCDM"
    }

    def growth(d, case):
        first, last = dcdm[(d, sizes[d][0], *case)], dcdm[(d, sizes[d][-1], *case)]
        if not (first["converged"] and last["converged"]):
            return None
        return last["iterations"] / first["iterations"]

    cases = {key[2:] for key in dcdm}
    growths = {
        f"{d}d-{geometry}": [growth(d, c) for c in cases if c[0] == geometry]
        for d in sizes
        for geometry in ("empty", "obstacle")
    }
    growths = {k: None if None in v else round(max(v), 2) for k, v in growths.items()}
    unconverged = sum(not r["converged"] for r in dcdm.values())
    largest = [r for r in rows if r["n"] == sizes[3][-1] and r["d"] == 3]

    def wall(method):
        return sum(
            r["setup_s"] + r["solve_s"] for r in largest if r["method"] == method
        )

    mg_iters = max(
        r["iterations"] for r in rows if r["method"] == "MG-PCG" and r["rtol"] == 1e-6
    )
    print(
        json.dumps(
            {
                "benchmark": "dcdm_poisson",
                "machine": f"{platform.machine()} {jax.devices()[0].device_kind}",
                "jax": jax.__version__,
                "pyamg": pyamg.__version__,
                "small": args.small,
                "dcdm_iteration_growth": growths,
                "dcdm_unconverged_cases": f"{unconverged}/{len(dcdm)}",
                "mg_pcg_max_iterations_1e-6": mg_iters,
                "ratio_dcdm_to_amg_wall_time_largest_3d": wall("DCDM")
                / wall("AMG-PCG (pyamg)"),
                "ratio_mg_pcg_to_amg_wall_time_largest_3d": wall("MG-PCG")
                / wall("AMG-PCG (pyamg)"),
            }
        )
    )


if __name__ == "__main__":
    main()
