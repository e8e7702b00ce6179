import sys
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


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"diffphys {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Differentiable physics and PDE solvers in JAX."""


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the PNG and metrics.json.")] = (
        Path("runs/demo")
    ),
    size: Annotated[int, typer.Option(help="Grid points per side (2D).", min=8)] = 32,
    steps: Annotated[int, typer.Option(help="Optimiser steps.", min=1)] = 300,
    seed: Annotated[int, typer.Option(help="Seed of the noise on the data.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress.")] = False,
) -> None:
    """Recover a diffusion coefficient by gradient descent through linear_solve."""
    from ._demo import run_demo

    run_demo(out=out, size=size, steps=steps, seed=seed, quiet=quiet)


def main() -> None:
    """Entry point of the console script: errors become one line and exit code."""
    try:
        app(standalone_mode=False)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        _fail("aborted")
        sys.exit(130)
    except Exception as e:  # one line, never a traceback from deep inside JAX
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):
            # A click usage error (typer vendors click): bad option, unknown command.
            message = " ".join(e.format_message().split())
            if message:
                _fail(message)
            sys.exit(e.exit_code)
        code = 2 if isinstance(e, ValueError) else 1
        lines = str(e).strip().splitlines()
        message = lines[0] if lines else type(e).__name__
        _fail(f"error: {message}")
        sys.exit(code)


def _fail(message: str) -> None:
    # Plain stderr, not rich: the reason must stay one line at any terminal width.
    print(f"diffphys: {message}", file=sys.stderr)
