import ast
import functools
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer


app = typer.Typer(
    name="diffphys",
    help="Differentiable physics and PDE solvers in JAX.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> bool:
    if value:
        from .. import __version__

        typer.echo(f"diffphys {__version__}")
        raise typer.Exit()
    return value  # typer passes a callback's return value on as the option's


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="DIFFPHYS_DEBUG",
            help="Show the traceback of every error, not one line (or "
            "DIFFPHYS_DEBUG=1).",
        ),
    ] = False,
    plugin: Annotated[
        list[str] | None,
        typer.Option(
            help="Import this module first (repeatable): it registers scenarios "
            "of yours with dp.datasets.register_scenario. Installed packages can "
            "declare it in the entry-point group diffphys.scenarios instead; a "
            "dataset remembers the module of its scenario.",
        ),
    ] = None,
) -> None:
    """Differentiable physics and PDE solvers in JAX."""
    global _debug
    _debug = debug
    if plugin:
        from ..datasets import load_plugins

        load_plugins(*plugin)


# Set by `--debug` / DIFFPHYS_DEBUG=1 (read by `main` once the command has failed).
_debug = False


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the outputs.")] = Path(
        "runs/demo"
    ),
    size: Annotated[int, typer.Option(help="Grid points per side (2D).", min=8)] = 32,
    steps: Annotated[int, typer.Option(help="Optimiser steps.", min=1)] = 300,
    seed: Annotated[int, typer.Option(help="Seed of the noise on the data.")] = 0,
    data_points: Annotated[
        int, typer.Option(help="Grid points of the pipeline's data.", min=32)
    ] = 128,
    data_samples: Annotated[
        int, typer.Option(help="Trajectories of the pipeline's data.", min=8)
    ] = 48,
    train_steps: Annotated[
        int, typer.Option(help="Optimiser steps of the pipeline's FNO.", min=1)
    ] = 600,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress.")] = False,
) -> None:
    """Two stages: recover a diffusion coefficient by gradient descent through
    linear_solve; then the main pipeline: generate a Burgers dataset, train an FNO
    with the JAWS-style penalty, evaluate it against a coarse classical baseline
    (report under OUT/evaluation)."""
    from ._demo import run_demo, run_pipeline_demo

    run_demo(out=out, size=size, steps=steps, seed=seed, quiet=quiet)
    run_pipeline_demo(out, data_points, data_samples, train_steps, quiet)


_Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
# The two training commands' run-folder options.
_Until = Annotated[
    int | None,
    typer.Option(help="Stop after this step (checkpointed); re-run to go on."),
]
_Overwrite = Annotated[bool, typer.Option(help="Replace another run in --out.")]


# Where the library defines the defaults the options show: (module, class or
# function). The command line re-declares none of them.
_MAKE_CONFIG = ("datasets/_config.py", "make_config")
_GENERATE = ("datasets/_engines.py", "generate")
_TRAIN_CONFIG = ("training/_config.py", "TrainConfig")
_EVALUATE = ("evaluation/_engine.py", "evaluate")
_DCDM_CONFIG = ("solvers/poisson/_train.py", "DCDMTrainConfig")


def _default(where: tuple[str, str], name: str):
    """The default of argument (or field) `name` of `where`, read from its source
    (a literal, or `eqx.field(default=literal)`), so that `diffphys --help` answers
    without importing JAX; `tests/test_package.py` checks each against the
    imported object."""
    node = _default_nodes(*where)[name]
    if isinstance(node, ast.Call):  # eqx.field(static=True, default=...)
        node = next(k.value for k in node.keywords if k.arg == "default")
    return ast.literal_eval(node)


@functools.cache
def _default_nodes(module: str, name: str) -> dict[str, ast.expr]:
    tree = ast.parse((Path(__file__).parents[1] / module).read_text())
    node = next(
        n
        for n in tree.body
        if isinstance(n, ast.ClassDef | ast.FunctionDef) and n.name == name
    )
    if isinstance(node, ast.ClassDef):
        return {
            s.target.id: s.value
            for s in node.body
            if isinstance(s, ast.AnnAssign) and s.value is not None
        }
    a = node.args
    positional = [*a.posonlyargs, *a.args]
    pairs = zip(
        positional[len(positional) - len(a.defaults) :], a.defaults, strict=True
    )
    keywords = zip(a.kwonlyargs, a.kw_defaults, strict=True)
    return {p.arg: d for p, d in [*pairs, *keywords] if d is not None}


def _train(name: str):
    return _default(_TRAIN_CONFIG, name)


def _dcdm(name: str):
    return _default(_DCDM_CONFIG, name)


@app.command()
def generate(
    scenario: Annotated[
        str,
        typer.Argument(
            help="Scenario name; `diffphys scenarios` lists every one with its "
            "fields, parameters and defaults (yours: see --plugin)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Dataset folder (The Well layout).")],
    num_samples: Annotated[
        int | None, typer.Option(help="Trajectories in all splits. [scenario default]")
    ] = None,
    num_points: Annotated[
        int | None,
        typer.Option(
            help="Grid points per axis (bodies, for per-body scenarios). "
            "[scenario default]"
        ),
    ] = None,
    num_steps: Annotated[
        int | None,
        typer.Option(help="Saved frames after the initial one. [scenario default]"),
    ] = None,
    dt: Annotated[
        float | None,
        typer.Option(help="Solver time step. [from the scheme's stability limit]"),
    ] = None,
    save_every: Annotated[
        int | None,
        typer.Option(help="Solver steps between saved frames. [from dt and horizon]"),
    ] = None,
    seed: Annotated[int, typer.Option(help="Base seed of every random draw.")] = (
        _default(_MAKE_CONFIG, "seed")
    ),
    split: Annotated[str, typer.Option(help="Train,valid,test fractions.")] = (
        _default(_MAKE_CONFIG, "split")
    ),
    shard_size: Annotated[
        int | None, typer.Option(help="Trajectories per file. [about 64 MiB a file]")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            help="Per-trajectory parameter: name=value, name=lo:hi, name=lo:hi:log "
            "(log-uniform) or name=a,b,c; repeatable."
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="float32 or float64, for computing and storing; default the "
            "scenario's (float32; float64 for contact-spheres)."
        ),
    ] = _default(_MAKE_CONFIG, "precision"),
    source: Annotated[
        str,
        typer.Option(
            help="solver (run the scenario's solver) or exact (its analytic "
            "solution: heat, pme, stefan, advection, burgers-riemann)."
        ),
    ] = _default(_MAKE_CONFIG, "source"),
    engine: Annotated[str, typer.Option(help="local or ray.")] = _default(
        _GENERATE, "engine"
    ),
    ray_address: Annotated[
        str | None, typer.Option(help="Address of a running Ray cluster.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="CPUs of a local Ray (default: all).", min=1)
    ] = None,
    num_shards: Annotated[
        int, typer.Option(help="Array size: this task writes every n-th shard.", min=1)
    ] = _default(_GENERATE, "num_shards"),
    shard_index: Annotated[
        int, typer.Option(help="This task's index in 0..num-shards-1.", min=0)
    ] = _default(_GENERATE, "shard_index"),
    overwrite: Annotated[
        bool, typer.Option(help="Replace a dataset of another config in --out.")
    ] = False,
    quiet: _Quiet = False,
) -> None:
    """Generate a PDE dataset: sharded, resumable, The Well-format HDF5."""
    import time

    from .. import datasets

    config = datasets.make_config(
        scenario,
        num_samples=num_samples,
        num_points=num_points,
        num_steps=num_steps,
        dt=dt,
        save_every=save_every,
        seed=seed,
        split=split,
        shard_size=shard_size,
        params=param,
        precision=precision,
        source=source,
    )
    resumed = None if overwrite else datasets.resume_state(out, config)
    if resumed and resumed["complete"] < resumed["total"]:
        partial = resumed["partial"]
        typer.echo(
            f"{out}: resuming: {resumed['complete']} of {resumed['total']} shards "
            "complete"
            + (
                f"; {partial} half-written shard file(s) of an interrupted run are "
                "computed again"
                if partial
                else ""
            )
        )
    start = time.perf_counter()
    datasets.generate(
        config,
        out,
        engine=engine,
        overwrite=overwrite,
        num_shards=num_shards,
        shard_index=shard_index,
        ray_address=ray_address,
        workers=workers,
        progress=False if quiet else None,
    )
    seconds = time.perf_counter() - start
    if num_shards == 1:
        typer.echo(
            f"{out}: {config.num_samples} trajectories of {config.num_frames} frames "
            f"in {len(config.shards())} files ({seconds:.1f} s); config {config.hash}"
        )
    else:
        typer.echo(
            f"{out}: shard task {shard_index} of {num_shards} done ({seconds:.1f} s); "
            "run `diffphys join` after all tasks"
        )


@app.command()
def scenarios(
    name: Annotated[
        str | None, typer.Argument(help="Only this scenario. [all]")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the scenarios `generate` knows: description, fields, parameters (default,
    admissible range), grid and horizon defaults, and where the defaults come
    from."""
    import json

    from .. import datasets
    from ._show import show_scenarios

    chosen = (
        [datasets.get_scenario(name)]
        if name
        else list(datasets.list_scenarios().values())
    )
    summaries = [sc.summary() for sc in chosen]
    if as_json:
        typer.echo(json.dumps(summaries, indent=1))
    else:
        show_scenarios(summaries)


@app.command()
def join(
    folder: Annotated[Path, typer.Argument(help="Dataset folder.")],
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Skip the checksum pass.")
    ] = False,
) -> None:
    """Check every shard of a sharded run and write yaml, stats and manifest."""
    from .. import datasets

    manifest = datasets.join(folder, verify=not no_verify)
    typer.echo(f"{folder}: joined {len(manifest['shards'])} shards")


@app.command()
def info(
    path: Annotated[Path, typer.Argument(help="A .hdf5 file or a dataset folder.")],
    fast: Annotated[
        bool,
        typer.Option(
            "--fast",
            help="Skip the shards' checksums (then corruption that keeps "
            "a file's size goes unseen).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    quiet: _Quiet = False,
) -> None:
    """Validate a file or dataset folder (The Well schema, sizes, checksums) and
    summarise it."""
    import json

    from ..datasets import describe
    from ._show import show_info

    summary = describe(path, verify=not fast, progress=False if quiet else None)
    if as_json:
        typer.echo(json.dumps(summary, indent=1))
    else:
        show_info(summary)


@app.command()
def export(
    folder: Annotated[Path, typer.Argument(help="Dataset folder.")],
    out: Annotated[
        Path,
        typer.Option(
            help="Output file, ending in .hdf5 (in .h5 for scenarios PDEBench keeps "
            "per sample: diffusion-sorption)."
        ),
    ],
    format: Annotated[str, typer.Option(help="Target layout: pdebench.")] = "pdebench",
    virtual: Annotated[
        bool,
        typer.Option(
            "--virtual",
            help="HDF5 virtual datasets over the shards instead of a standalone "
            "copy: no copy, but a reader that cannot find a shard by its absolute "
            "path fills NaN or may bind a same-named file of another dataset "
            "(diffphys info FILE checks).",
        ),
    ] = False,
    field: Annotated[
        str | None, typer.Option(help="Only this field (scalar or vector). [all]")
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Only this split. [test, train, valid]")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --out.")] = False,
) -> None:
    """Export a dataset folder to PDEBench's layout and conventions: its single
    file (test split first, its parameter units and coordinates; a steady
    scenario's input as `nu`), or its per-sample file (test split last)."""
    from ..datasets import export_pdebench

    if format != "pdebench":
        raise ValueError(f"Unknown --format {format!r}; supported: pdebench.")
    export_pdebench(
        folder, out, virtual=virtual, field=field, split=split, overwrite=overwrite
    )
    typer.echo(f"{out}: {'virtual' if virtual else 'standalone'} PDEBench file")


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Dataset folder (diffphys generate).")],
    out: Annotated[Path, typer.Option(help="Run folder (resumes when re-run).")],
    model: Annotated[str, typer.Option(help="fno or dymixop.")] = _train("model"),
    mode: Annotated[
        str,
        typer.Option(
            help="one, sup-K (unrolled), div-K (diverted chain through the "
            "reference solver) or correction[-K] (solver in the loop)."
        ),
    ] = _train("mode"),
    steps: Annotated[int, typer.Option(help="Optimiser steps.", min=1)] = _train(
        "num_train_steps"
    ),
    batch_size: Annotated[int, typer.Option(help="Windows per batch.", min=1)] = _train(
        "batch_size"
    ),
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).")] = _train(
        "learning_rate"
    ),
    width: Annotated[int, typer.Option(help="Hidden channels.", min=1)] = _train(
        "width"
    ),
    modes: Annotated[int, typer.Option(help="Fourier modes per axis.", min=1)] = _train(
        "modes"
    ),
    layers: Annotated[int, typer.Option(help="Operator layers.", min=1)] = _train(
        "num_layers"
    ),
    loss: Annotated[str, typer.Option(help="mse, relative_mse or nrmse.")] = _train(
        "loss"
    ),
    tbptt: Annotated[
        int | None,
        typer.Option(help="Stop gradients between states every this many steps."),
    ] = _train("tbptt"),
    solver: Annotated[
        str,
        typer.Option(
            help="Coarse solver of --mode correction: implicit, "
            "implicit:substeps=K or solver:SCENARIO[:num_points=N]."
        ),
    ] = _train("solver"),
    jaws: Annotated[
        bool, typer.Option("--jaws", help="JAWS-style weighted Jacobian penalty.")
    ] = _train("jaws"),
    jaws_weight: Annotated[float, typer.Option(help="Weight of --jaws.")] = _train(
        "jaws_weight"
    ),
    constraint: Annotated[
        str,
        typer.Option(
            help="Keep each predicted frame's mass: none, hard (projection) or "
            "probconserv (variance-weighted, needs --jaws); closed domains only."
        ),
    ] = _train("constraint"),
    spectral_penalty: Annotated[
        float,
        typer.Option(help="Weight of the global spectral-norm penalty (0: off)."),
    ] = _train("spectral_penalty"),
    clip_norm: Annotated[
        float, typer.Option(help="Global gradient-norm clip (0: off).")
    ] = _train("clip_norm"),
    validate_every: Annotated[
        int | None, typer.Option(help="Steps between validations. [steps / 10]")
    ] = _train("validate_every"),
    valid_steps: Annotated[
        int | None, typer.Option(help="Rollout frames of a validation. [<= 50]")
    ] = _train("valid_num_steps"),
    seed: Annotated[
        int, typer.Option(help="Seed of weights, batches, probes.")
    ] = _train("seed"),
    until: _Until = None,
    overwrite: _Overwrite = False,
    quiet: _Quiet = False,
) -> None:
    """Train a neural operator on a dataset; checkpoints, logs and the best model
    by validation go to OUT (re-running the command resumes)."""
    from .. import training

    config = training.TrainConfig(
        model=model,
        mode=mode,
        num_train_steps=steps,
        batch_size=batch_size,
        learning_rate=lr,
        width=width,
        modes=modes,
        num_layers=layers,
        loss=loss,
        tbptt=tbptt,
        solver=solver,
        jaws=jaws,
        jaws_weight=jaws_weight,
        spectral_penalty=spectral_penalty,
        constraint=constraint,
        clip_norm=clip_norm or None,
        validate_every=validate_every,
        valid_num_steps=valid_steps,
        seed=seed,
    )
    result = training.train(
        config,
        data,
        out,
        overwrite=overwrite,
        until=until,
        progress=False if quiet else None,
    )
    summary = result.summary
    if summary["extended_from"]:
        typer.echo(
            f"{out}: extending the run from {summary['extended_from']} to {steps} "
            f"steps; its learning-rate schedule is now the {steps}-step one"
        )
    elif summary["resumed_from"] and summary["resumed_from"] == summary["step"]:
        typer.echo(f"{out}: already at step {summary['step']}; nothing to train")
    elif summary["resumed_from"]:
        typer.echo(
            f"{out}: resumed from the checkpoint at step {summary['resumed_from']}"
        )
    state = "finished" if summary["finished"] else f"stopped at step {summary['step']}"
    typer.echo(
        f"{out}: {state}; best validation nRMSE {summary['best_valid_nrmse']:.4g} at "
        f"step {summary['best_step']} ({summary['parameters']} parameters, "
        f"{summary['seconds']:.1f} s)"
    )


@app.command()
def evaluate(
    model: Annotated[
        list[str],
        typer.Option(
            help="Model to roll out, repeatable: a run folder of diffphys train, "
            "solver:SCENARIO or solver:SCENARIO:num_points=N,save_every=K (a coarser "
            "classical baseline)."
        ),
    ],
    data: Annotated[Path, typer.Option(help="Dataset folder (diffphys generate).")],
    out: Annotated[Path, typer.Option(help="Report folder.")],
    split: Annotated[str, typer.Option(help="train, valid or test.")] = _default(
        _EVALUATE, "split"
    ),
    steps: Annotated[
        int | None, typer.Option(help="Rollout steps (saved frames). [all]")
    ] = _default(_EVALUATE, "num_steps"),
    threshold: Annotated[
        float, typer.Option(help="Correlation threshold of the high-correlation time.")
    ] = _default(_EVALUATE, "threshold"),
    overwrite: Annotated[
        bool, typer.Option(help="Replace a previous report in --out.")
    ] = False,
) -> None:
    """Roll models out on a dataset split; write metrics.json, PNGs and report.md."""
    import shlex

    from .. import evaluation, training

    # Bad specs fail before any rollout.
    specs = [
        training.load_run(m, name=m) if Path(m).is_dir() else evaluation.parse_model(m)
        for m in model
    ]
    results = [
        evaluation.evaluate(m, data, split=split, num_steps=steps, threshold=threshold)
        for m in specs
    ]
    command = "diffphys " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    evaluation.write_report(results, out, command=command, overwrite=overwrite)
    for r in results:
        s = r.summary()
        typer.echo(
            f"{r.name}: nRMSE geo-mean {s['nrmse_geometric_mean']:.3g}, final "
            f"{s['nrmse_final_median']:.3g}, blow-ups {s['blowups']}"
        )
    typer.echo(f"{out}: report.md, metrics.json and plots")


@app.command("train-dcdm")
def train_dcdm(
    out: Annotated[Path, typer.Option(help="Run folder (resumes when re-run).")],
    dims: Annotated[int, typer.Option(help="2 or 3.")] = _dcdm("num_spatial_dims"),
    num_points: Annotated[
        int, typer.Option(help="Cells per axis of the training box (even).")
    ] = _dcdm("num_points"),
    walls: Annotated[
        str,
        typer.Option(
            help="solid (closed Neumann box, as the authors), air, or open-top "
            "(solid walls, air above)."
        ),
    ] = _dcdm("walls"),
    lanczos_steps: Annotated[
        int, typer.Option(help="Lanczos steps m of the Ritz data.")
    ] = _dcdm("lanczos_steps"),
    samples: Annotated[
        int, typer.Option(help="Training right-hand sides.", min=1)
    ] = _dcdm("num_samples"),
    width: Annotated[int, typer.Option(help="Channels.", min=1)] = _dcdm("width"),
    steps: Annotated[int, typer.Option(help="Adam steps.", min=1)] = _dcdm(
        "num_train_steps"
    ),
    batch_size: Annotated[int, typer.Option(min=1)] = _dcdm("batch_size"),
    lr: Annotated[float, typer.Option(help="Adam's learning rate.")] = _dcdm(
        "learning_rate"
    ),
    validate_every: Annotated[
        int, typer.Option(help="Steps between validations.", min=1)
    ] = _dcdm("validate_every"),
    seed: Annotated[int, typer.Option(help="Seed of data, weights, batches.")] = _dcdm(
        "seed"
    ),
    until: _Until = None,
    overwrite: _Overwrite = False,
    quiet: _Quiet = False,
) -> None:
    """Train a DCDM network (the deep conjugate direction method's) on Lanczos data
    of the empty box; checkpoints, log, data and the best network by validation
    iterations go to OUT (re-running the command resumes)."""
    from ..solvers import poisson

    config = poisson.DCDMTrainConfig(
        num_spatial_dims=dims,
        num_points=num_points,
        walls=walls,
        lanczos_steps=lanczos_steps,
        num_samples=samples,
        width=width,
        num_train_steps=steps,
        batch_size=batch_size,
        learning_rate=lr,
        validate_every=validate_every,
        seed=seed,
    )
    _, summary = poisson.train_dcdm(
        config, out, overwrite=overwrite, until=until, progress=False if quiet else None
    )
    state = "finished" if summary["finished"] else f"stopped at step {summary['step']}"
    typer.echo(
        f"{out}: {state}; best validation {summary['best_valid_steps']:.1f} DCDM "
        f"iterations at step {summary['best_step']} ({summary['parameters']} "
        f"parameters, {summary['seconds']:.1f} s)"
    )


def main() -> None:
    """Entry point of the console script: errors become one line and exit code."""
    try:
        app(standalone_mode=False)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted; `diffphys generate` resumes when run again")
        sys.exit(130)
    except Exception as e:
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):
            # A click usage error (typer vendors click): bad option, unknown command.
            message = " ".join(e.format_message().split())
            if message:
                _fail(message)
            sys.exit(e.exit_code)
        expected = _is_expected(e)
        if _debug or not expected:
            traceback.print_exc()
        if not expected:
            _fail(
                f"internal error ({type(e).__name__}): this is a bug in diffphys; "
                "please report it with the traceback above and the command you ran"
            )
            sys.exit(1)
        # An expected error: one line, never a traceback from deep inside JAX.
        lines = str(e).strip().splitlines()
        message = lines[0] if lines else type(e).__name__
        _fail(f"error: {as_flags(message, _command())}")
        sys.exit(2 if isinstance(e, ValueError) else 1)


def _is_expected(error: Exception) -> bool:
    """Errors that report bad input or a failed solve, not a bug of ours: wrong
    values (ValueError), a failed runtime check of a solver (equinox's error_if),
    a diverged training run (FloatingPointError), files that cannot be read or
    written (OSError, which h5py's errors are)."""
    import equinox as eqx

    return isinstance(
        error, ValueError | OSError | FloatingPointError | eqx.EquinoxRuntimeError
    )


# Library arguments whose command-line option is named otherwise, per command.
_ALIASES = {
    "generate": {"params": "param"},
    "train": {
        "learning_rate": "lr",
        "num_layers": "layers",
        "num_train_steps": "steps",
        "valid_num_steps": "valid_steps",
    },
    "evaluate": {"num_steps": "steps"},
    "train-dcdm": {
        "num_spatial_dims": "dims",
        "num_train_steps": "steps",
        "num_samples": "samples",
        "learning_rate": "lr",
    },
}


def _command() -> str | None:
    """The subcommand of this invocation, if any."""
    commands = typer.main.get_command(app).commands
    return next((a for a in sys.argv[1:] if a in commands), None)


def as_flags(message: str, command: str | None) -> str:
    """A library message in the command's terms: each argument written as
    `` `name` `` or `` `name=value` `` becomes its option (`--name`, `--name value`,
    `--flag` for `=True`). Names the command has no option for stay as written."""
    import re

    options = {}
    if command is not None:
        click_command = typer.main.get_command(app).commands[command]
        options = {
            p.name: p.opts[0] for p in click_command.params if p.opts[0][:2] == "--"
        }
    aliases = _ALIASES.get(command, {})

    def flag(match):
        name, value = match.group(1), match.group(2)
        option = options.get(aliases.get(name, name))
        if option is None:
            return match.group(0)
        if value is None or value == "True":
            return option
        return f"{option} {value.strip(chr(39) + chr(34))}"

    return re.sub(r"`(\w+)(?:=([^`]*))?`", flag, message)


def _fail(message: str) -> None:
    # Plain stderr, not rich: the reason must stay one line at any terminal width.
    print(f"diffphys: {message}", file=sys.stderr)
