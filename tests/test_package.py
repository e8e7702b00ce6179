"""Package layout, metadata and the command line."""

import importlib
import importlib.metadata
import json
import os
import pathlib
import subprocess
import sys

import pytest
from helpers import run_cli

import diffphys as dp


ROOT = pathlib.Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "diffphys"]


def test_version_comes_from_metadata():
    assert dp.__version__ == importlib.metadata.version("diffphys")


@pytest.mark.parametrize(
    "name",
    [
        "implicit",
        "solvers",
        "operators",
        "constraints",
        "datasets",
        "training",
        "evaluation",
        "cli",
    ],
)
def test_subpackages_import_and_document_themselves(name):
    module = importlib.import_module(f"diffphys.{name}")
    assert module.__doc__ and len(module.__doc__.strip()) > 40


def test_public_names():
    for name in [
        "linear_solve",
        "root_find",
        "fixed_point",
        "CG",
        "PCG",
        "Jacobi",
        "Newton",
        "FixedPointIteration",
        "Anderson",
        "Jaxopt",
        "ImplicitAdjoint",
        "UnrolledAdjoint",
    ]:
        assert hasattr(dp.implicit, name), name
    for name in [
        "make_config",
        "generate",
        "join",
        "describe",
        "export_pdebench",
        "open",
        "register_scenario",
        "get_scenario",
        "list_scenarios",
    ]:
        assert hasattr(dp.datasets, name), name


def test_readme_says_how_each_solver_is_differentiated():
    # The headline names every stepper with its gradient: implicit layers or
    # backprop (the README once claimed implicit layers for all).
    headline = (ROOT / "README.md").read_text().split("```")[0]
    steppers = [
        name
        for name in dir(dp.solvers)
        if isinstance(getattr(dp.solvers, name), type)
        and issubclass(getattr(dp.solvers, name), dp.solvers.AbstractStepper)
        and not name.startswith("Abstract")
    ]
    assert steppers, "no steppers found"
    for name in steppers:
        assert f"`{name}`" in headline, name
    assert "implicit-differentiation layers" in headline and "backprop" in headline


def test_installs_take_the_tested_versions_from_the_lock_file():
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [
        d
        for extra in ("test", "jaxopt", "ray", "bench")
        for d in project["optional-dependencies"][extra]
    ]
    lock = (ROOT / "requirements.lock").read_text().splitlines()
    pinned = {
        line.split("==")[0].lower().replace("_", "-") for line in lock if "==" in line
    }
    for requirement in wanted:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()
        assert name.replace("_", "-") in pinned, requirement
    makefile = (ROOT / "Makefile").read_text()
    assert "-c $(LOCK)" in makefile and "LOCK   := requirements.lock" in makefile
    # `make notebooks`: JupyterLab from the [notebook] extra and a kernel of the venv.
    assert "notebooks: $(VENV)/.stamp-test" in makefile
    assert "ipykernel install --sys-prefix" in makefile
    assert "notebook" in project["optional-dependencies"]
    # What the code relies on is pinned: lineax 0.1.1 has the 3-JVP tridiagonal
    # Jacobian; equinox's and optimistix's internal APIs change between minors.
    deps = " ".join(project["dependencies"])
    for pin in (
        "lineax>=0.1.1,<0.2",
        "equinox>=0.13.0,<0.14",
        "optimistix>=0.1.0,<0.2",
    ):
        assert pin in deps, pin


def test_library_never_touches_global_jax_config():
    for path in (ROOT / "diffphys").rglob("*.py"):
        text = path.read_text()
        assert "jax_enable_x64" not in text and "config.update" not in text, path


def test_no_repo_root_datasets_folder():
    assert not (ROOT / "datasets").exists()


def _run(*args, cwd=None):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd)


_HELP_PROBE = """
import contextlib, io, json, sys
from diffphys.cli import main
out = {}
for args in [["--version"], ["--help"], *[[c, "--help"] for c in sys.argv[1:]]]:
    sys.argv = ["diffphys", *args]
    text = io.StringIO()
    with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
        main()
    out[" ".join(args)] = text.getvalue()
print(json.dumps({"jax": "jax" in sys.modules, "out": out}))
"""


def test_cli_version_and_help_answer_without_importing_jax():
    commands = {
        "demo": "--data-points",
        "generate": "--num-shards",
        "join": "--no-verify",
        "info": "--fast",
        "export": "--virtual",
        "evaluate": "--model",
        "train": "--jaws",
    }
    probe = subprocess.run(
        [sys.executable, "-c", _HELP_PROBE, *commands],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    result = json.loads(probe.stdout)
    assert not result["jax"]
    out = result["out"]
    assert out["--version"].strip() == f"diffphys {dp.__version__}"
    assert "demo" in out["--help"]
    for command, option in commands.items():
        assert option in out[f"{command} --help"], command
    # `generate --help` points to the list of every scenario.
    assert "`diffphys scenarios` lists every" in out["generate --help"]


def test_cli_defaults_are_the_library_defaults():
    # The command line reads its defaults from the library's source (to answer
    # --help without JAX): each must be what the imported object says.
    import dataclasses
    import inspect

    from diffphys.cli import _app

    objects = {
        _app._MAKE_CONFIG: dp.datasets.make_config,
        _app._GENERATE: dp.datasets.generate,
        _app._TRAIN_CONFIG: dp.training.TrainConfig,
        _app._EVALUATE: dp.evaluation.evaluate,
        _app._DCDM_CONFIG: dp.solvers.poisson.DCDMTrainConfig,
    }
    for where, thing in objects.items():
        names = _app._default_nodes(*where)
        if dataclasses.is_dataclass(thing):
            truth = {f.name: f.default for f in dataclasses.fields(thing)}
        else:
            parameters = inspect.signature(thing).parameters.values()
            truth = {p.name: p.default for p in parameters if p.default is not p.empty}
        assert set(names) == set(truth), where
        for name in names:
            assert _app._default(where, name) == truth[name], (where, name)


@pytest.mark.parametrize(
    "args,message",
    [
        (["nonsense"], "No such command"),
        (["demo", "--size", "2"], "--size"),
        (["demo", "--steps", "abc"], "--steps"),
    ],
)
def test_cli_bad_input_is_one_line_and_nonzero(args, message):
    out = _run(*args)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("diffphys:")


def test_library_errors_name_arguments_and_the_cli_its_options():
    # The library speaks Python (`dt=`, `overwrite=True`), never a flag ...
    with pytest.raises(ValueError, match="use `dt=") as error:
        dp.datasets.make_config("burgers", dt=1.0)
    assert "--" not in str(error.value)
    with pytest.raises(ValueError, match="`learning_rate` must be > 0"):
        dp.training.TrainConfig(learning_rate=-1.0)
    # ... and the command line rewrites each argument into the running command's
    # option, under its own name where the two differ.
    from diffphys.cli._app import as_flags

    message = "use `dt=0.01` or less, or raise `save_every`; pass `overwrite=True`"
    assert as_flags(message, "generate") == (
        "use --dt 0.01 or less, or raise --save-every; pass --overwrite"
    )
    assert as_flags("`num_train_steps` and `learning_rate`", "train") == (
        "--steps and --lr"
    )
    assert as_flags("`num_steps` must be in 1..12", "evaluate") == (
        "--steps must be in 1..12"
    )
    assert (
        as_flags("`num_steps` is unknown here", None) == "`num_steps` is unknown here"
    )


def test_cli_demo_writes_its_files(tmp_path):
    out = run_cli(
        "demo",
        "--size",
        "12",
        "--steps",
        "20",
        "--data-points",
        "64",
        "--data-samples",
        "8",
        "--train-steps",
        "10",
        "--out",
        str(tmp_path / "demo"),
        "--quiet",
    )
    assert out.returncode == 0, out.stderr
    report = (tmp_path / "demo" / "evaluation" / "report.md").read_text()
    for model in ["fno+jaws", "solver:burgers:num_points=16"]:
        assert f"| `{model}`" in report
    assert (tmp_path / "demo" / "data" / "burgers" / "manifest.json").is_file()
    assert (tmp_path / "demo" / "run" / "best.eqx").is_file()
    png = tmp_path / "demo" / "coefficient_recovery.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    # Twenty steps already shrink the misfit and the coefficient error.
    assert metrics["loss_last"] < 0.5 * metrics["loss_first"]
    assert (
        metrics["kappa_relative_l2_error"] < metrics["kappa_relative_l2_error_initial"]
    )


def test_cli_output_path_that_is_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = run_cli("demo", "--size", "8", "--steps", "1", "--out", blocker, "--quiet")
    assert out.returncode != 0
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "error, debug, bug",
    [
        (ValueError("`dt=0.5` is above the stability limit"), False, False),
        (FileNotFoundError("no such dataset"), False, False),
        (TypeError("unsupported operand"), False, True),  # our bug, not the user's
        (ValueError("`dt=0.5` is above the stability limit"), True, False),
    ],
    ids=["value-error", "file-error", "bug", "debug"],
)
def test_cli_errors_one_line_when_expected_and_a_traceback_for_bugs(
    monkeypatch, error, debug, bug
):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(dp.datasets, "describe", fail)
    if debug:
        monkeypatch.setenv("DIFFPHYS_DEBUG", "1")
    else:
        monkeypatch.delenv("DIFFPHYS_DEBUG", raising=False)
    result = run_cli("info", "somewhere")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == (1 if bug or isinstance(error, OSError) else 2)
    assert ("Traceback (most recent call last)" in result.stderr) == (bug or debug)
    if bug:
        assert "bug in diffphys" in lines[-1] and "TypeError" in lines[-1]
    else:
        assert lines[-1].startswith("diffphys: error: ")
        assert str(error).split()[-1] in lines[-1]
        assert len(lines) == 1 or debug
