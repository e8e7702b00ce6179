"""`diffphys demo`: an inverse problem solved through the implicit linear solve.

Unknown: a spatially varying diffusion coefficient κ(x, y) on the unit square.
Data: the steady states u_j of `-∇·(κ ∇u_j) = f_j` (zero Dirichlet boundaries) for a
few sources f_j, with 0.1 % noise. Fit `κ = exp(θ)` by Adam on the data misfit plus a
smoothness penalty; every gradient flows through `dp.implicit.linear_solve` (CG) by
the implicit function theorem, one adjoint CG solve per source.
"""

import json
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import matplotlib
import optax
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from .. import implicit
from ..solvers.poisson import DiffusionOperator


def true_coefficient(x, y):
    """The coefficient the demo recovers: a background of 1 with a bump and a dip."""
    bump = 1.5 * jnp.exp(-((x - 0.3) ** 2 + (y - 0.65) ** 2) / 0.02)
    dip = -0.5 * jnp.exp(-((x - 0.7) ** 2 + (y - 0.3) ** 2) / 0.03)
    return 1.0 + bump + dip


def sources(x, y):
    """Four smooth sources at different places, shape (4, N, N)."""
    centres = [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]
    return jnp.stack(
        [100 * jnp.exp(-((x - a) ** 2 + (y - b) ** 2) / 0.05) for a, b in centres]
    )


def solve_states(theta, f, solver):
    operator = DiffusionOperator(jnp.exp(theta), 1.0)

    def solve(rhs):
        return implicit.linear_solve(operator, rhs, solver).value

    return jax.vmap(solve)(f)


def loss_fn(theta, f, u_obs, solver, smoothing):
    u = solve_states(theta, f, solver)
    misfit = jnp.sum((u - u_obs) ** 2) / jnp.sum(u_obs**2)
    roughness = sum(jnp.sum(jnp.diff(theta, axis=a) ** 2) for a in (0, 1))
    return misfit + smoothing * roughness, misfit


def run_demo(out: Path, size: int, steps: int, seed: int, quiet: bool) -> dict:
    """Run the inverse problem; writes `coefficient_recovery.png` and `metrics.json`
    under `out` and returns the metrics."""
    console = Console(quiet=quiet)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    grid = DiffusionOperator(jnp.ones((size, size)), 1.0).grid()
    kappa_true = true_coefficient(*grid)
    f = sources(*grid)
    solver = implicit.CG(rtol=1e-5, max_steps=10 * size)
    u_clean = solve_states(jnp.log(kappa_true), f, solver)
    noise = 1e-3 * jnp.std(u_clean) * jr.normal(jr.key(seed), u_clean.shape)
    u_obs = u_clean + noise

    smoothing = 1e-6
    schedule = optax.cosine_decay_schedule(0.05, steps, alpha=0.1)
    optimiser = optax.adam(schedule)
    theta = jnp.zeros((size, size))
    opt_state = optimiser.init(theta)

    @eqx.filter_jit
    def step(theta, opt_state):
        (loss, misfit), grad = jax.value_and_grad(loss_fn, has_aux=True)(
            theta, f, u_obs, solver, smoothing
        )
        # optax's Adam mixes dtypes internally (its step count): standard
        # promotion, whatever the caller's setting (as the trainer does).
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimiser.update(grad, opt_state)
            theta = optax.apply_updates(theta, updates)
        return theta, opt_state, loss, misfit

    losses, misfits = [], []
    progress = Progress(
        TextColumn("[bold]recovering κ"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} loss {task.fields[loss]:.2e}"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet or not console.is_terminal,
    )
    with progress:
        task = progress.add_task("fit", total=steps, loss=float("nan"))
        for _ in range(steps):
            theta, opt_state, loss, misfit = step(theta, opt_state)
            losses.append(float(loss))
            misfits.append(float(misfit))
            progress.update(task, advance=1, loss=losses[-1])
    if not all(map(jnp.isfinite, jnp.array(losses))):
        raise RuntimeError("the demo's loss became NaN; this is a bug, please report")

    kappa = jnp.exp(theta)
    relative_error = float(
        jnp.linalg.norm(kappa - kappa_true) / jnp.linalg.norm(kappa_true)
    )
    initial_error = float(
        jnp.linalg.norm(1.0 - kappa_true) / jnp.linalg.norm(kappa_true)
    )
    metrics = {
        "grid": [size, size],
        "steps": steps,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "misfit_last": misfits[-1],
        "kappa_relative_l2_error_initial": initial_error,
        "kappa_relative_l2_error": relative_error,
        "seconds": round(time.perf_counter() - start, 2),
        "backend": jax.default_backend(),
    }
    png = out / "coefficient_recovery.png"
    _plot(png, kappa_true, kappa, losses)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")

    checkpoints = sorted({0, steps // 10, steps // 2, steps - 1})
    summary = ", ".join(f"step {i + 1}: {losses[i]:.3e}" for i in checkpoints)
    console.print(f"loss ({steps} Adam steps): {summary}")
    console.print(
        f"relative L2 error of κ: {initial_error:.3f} (initial guess κ = 1) -> "
        f"{relative_error:.3f}"
    )
    console.print(f"wrote {png} and {out / 'metrics.json'} in {metrics['seconds']} s")
    return metrics


def _plot(path: Path, kappa_true, kappa, losses) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), constrained_layout=True)
    vmin, vmax = float(kappa_true.min()), float(kappa_true.max())
    for ax, field, title in [
        (axes[0], kappa_true, "true κ"),
        (axes[1], kappa, "recovered κ"),
    ]:
        image = ax.imshow(
            field.T,
            origin="lower",
            extent=(0, 1, 0, 1),
            vmin=vmin,
            vmax=vmax,
            cmap="viridis",
        )
        ax.set_title(title)
        fig.colorbar(image, ax=ax, shrink=0.85)
    image = axes[2].imshow(
        jnp.abs(kappa - kappa_true).T, origin="lower", extent=(0, 1, 0, 1), cmap="magma"
    )
    axes[2].set_title("|error|")
    fig.colorbar(image, ax=axes[2], shrink=0.85)
    axes[3].semilogy(losses)
    axes[3].set_xlabel("Adam step")
    axes[3].set_title("loss")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_pipeline_demo(
    out: Path,
    num_points: int,
    num_samples: int,
    train_steps: int,
    quiet: bool,
) -> list[dict]:
    """The main job end to end: generate a small Burgers dataset (ν = 0.01) under
    `out/data`, train a small residual FNO with the JAWS-style penalty (2-step
    unrolled) under `out/run`, and evaluate it next to a coarse classical baseline
    (the spectral solver on a quarter of the grid) on the test split, with the report
    under `out/evaluation`. Returns each model's summary."""
    from .. import datasets, evaluation, training

    console = Console(quiet=quiet, soft_wrap=True)
    start = time.perf_counter()
    config = datasets.make_config(
        "burgers",
        num_samples=num_samples,
        num_points=num_points,
        num_steps=50,
        split="0.75,0.125,0.125",
        params={"nu": "0.01"},
    )
    data = out / "data" / "burgers"
    datasets.generate(config, data, overwrite=True, progress=False if quiet else None)
    console.print(f"generated {data} in {time.perf_counter() - start:.1f} s")
    train_config = training.TrainConfig(
        model="fno",
        mode="sup-2",
        jaws=True,
        jaws_weight=1e-4,
        num_train_steps=train_steps,
        batch_size=16,
        width=24,
        modes=min(12, num_points // 4),
        num_layers=4,
        valid_num_steps=25,
    )
    run = out / "run"
    summary = training.train(
        train_config, data, run, overwrite=True, progress=False if quiet else None
    ).summary
    console.print(
        f"trained {run}: best validation nRMSE {summary['best_valid_nrmse']:.3g} "
        f"(25-step rollouts) in {summary['seconds']:.1f} s"
    )
    models = [
        training.load_run(run, name="fno+jaws"),
        evaluation.parse_model(f"solver:burgers:num_points={num_points // 4}"),
    ]
    results = [evaluation.evaluate(m, data, split="test") for m in models]
    report = evaluation.write_report(
        results,
        out / "evaluation",
        command="diffphys demo (generate → train → evaluate)",
        overwrite=True,
    )
    summaries = [{"model": r.name, **r.summary()} for r in results]
    for s in summaries:
        console.print(
            f"{s['model']}: nRMSE geo-mean {s['nrmse_geometric_mean']:.3g}, "
            f"final {s['nrmse_final_median']:.3g}, high-correlation time "
            f"{s['high_correlation_time_median']:.2f}, blow-ups {s['blowups']}"
        )
    console.print(
        f"wrote {report / 'report.md'}; pipeline took "
        f"{time.perf_counter() - start:.1f} s"
    )
    return summaries
