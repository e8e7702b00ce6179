"""Training: modes, gradients through solvers, checkpoints and exact resume,
device sharding, `diffphys train` and `diffphys evaluate --model RUN_DIR`."""

import json
import os
import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    assert_one_line_error,
    central_difference,
    random_like,
    run_cli,
    tree_vdot,
)

import diffphys as dp


TINY = dict(width=8, modes=4, num_layers=2, batch_size=2, learning_rate=3e-3)


@pytest.fixture(scope="module")
def one_trajectory(tmp_path_factory):
    """One training trajectory (the overfitting target), one valid, two test."""
    folder = tmp_path_factory.mktemp("train") / "ds"
    config = dp.datasets.make_config(
        "burgers",
        num_samples=4,
        num_points=32,
        num_steps=8,
        split="0.25,0.25,0.5",
        params={"nu": "0.02"},
    )
    dp.datasets.generate(config, folder, progress=False)
    return folder


def _log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    "options",
    [
        dict(mode="one"),
        dict(mode="sup-3", tbptt=2),
        dict(mode="div-3"),
        # a spectral solver on half the grid: its truncation error is what to learn
        dict(
            mode="correction-2",
            solver="solver:burgers:num_points=16",
            num_train_steps=120,
        ),
        dict(mode="one", jaws=True, jaws_weight=1e-3),
        dict(mode="sup-2", spectral_penalty=1e-2, model="dymixop"),
    ],
    ids=["one", "sup", "div", "correction", "jaws", "spectral-dymixop"],
)
def test_each_mode_reduces_the_loss_on_one_trajectory(
    one_trajectory, tmp_path, options
):
    options = {"num_train_steps": 60, **options}
    config = dp.training.TrainConfig(validate_every=30, **TINY, **options)
    run = tmp_path / "run"
    summary = dp.training.train(config, one_trajectory, run, progress=False).summary
    losses = [e["data_loss"] for e in _log(run) if "data_loss" in e]
    assert summary["finished"] and np.all(np.isfinite(losses))
    # the untrained model is the identity (or the coarse solver): the first loss
    # is that baseline's; overfitting must beat it clearly
    assert np.mean(losses[-5:]) < 0.5 * losses[0], losses
    penalties = [e["penalty"] for e in _log(run) if "penalty" in e]
    assert (max(penalties) > 0) == ("jaws" in options or "spectral_penalty" in options)


@pytest.mark.parametrize(
    "options",
    [dict(constraint="hard"), dict(constraint="probconserv", jaws=True)],
    ids=["hard", "probconserv"],
)
def test_constrained_training_learns_and_every_rolled_out_frame_keeps_the_mass(
    one_trajectory, tmp_path, options
):
    """`--constraint`: training runs through the mass constraint, the loss still
    falls, and the trained run's rollout keeps the initial mass (periodic Burgers
    conserves it) to float32 round-off, frame after frame."""
    config = dp.training.TrainConfig(
        num_train_steps=60, validate_every=30, mode="one", **TINY, **options
    )
    run = tmp_path / "run"
    assert dp.training.train(config, one_trajectory, run, progress=False).summary[
        "finished"
    ]
    losses = [e["data_loss"] for e in _log(run) if "data_loss" in e]
    assert np.mean(losses[-5:]) < 0.5 * losses[0], losses
    model = dp.training.load_run(run, which="last")
    assert isinstance(model.model, dp.constraints.MassConserving)
    bare = eqx.tree_at(lambda m: m.model, model, model.model.model)

    def mass_drift(m):
        result = dp.evaluation.evaluate(m, one_trajectory, split="test")
        prediction = result.examples["prediction"].astype(np.float64)
        assert prediction.shape[1] > 2 and np.all(np.isfinite(prediction))
        mass = prediction.sum(axis=(-2, -1))  # (k, T + 1)
        return np.abs(mass - mass[:, :1]).max() / np.abs(prediction[:, 0]).sum()

    # float32 round-off of the per-frame sums, 8 frames; the same network without
    # its constraint drifts by orders of magnitude more
    assert mass_drift(model) < 1e-6
    assert mass_drift(bare) > 1e-4


def test_correction_gradient_through_an_implicit_step_matches_finite_differences(
    getkey,
):
    """Solver in the loop: the loss of one corrected Crank–Nicolson step; its
    gradient w.r.t. the network comes through `root_find` by the implicit function
    theorem and must match central differences (float64)."""
    data = dp.datasets.make_config(
        "burgers", num_points=16, num_steps=4, precision="float64"
    )
    config = dp.training.TrainConfig(mode="correction", width=4, modes=3, num_layers=1)
    model = dp.training.build_model(config, data, tau=0.1, key=getkey())
    # a non-zero last layer, so the gradient reaches every weight
    model = eqx.tree_at(
        lambda m: m.project[1].weight,
        model,
        0.1 * jax.random.normal(getkey(), model.project[1].weight.shape),
    )
    x = jnp.arange(16, dtype=float) / 16
    u0 = jnp.sin(2 * jnp.pi * x)[None]
    target = 0.9 * u0
    params, static = eqx.partition(model, eqx.is_inexact_array)

    @jax.jit  # one compilation for the probes, not one per operation
    def loss(p):
        step = dp.training.make_step(eqx.combine(p, static), config, data)(
            {"nu": jnp.asarray(0.05)}
        )
        return jnp.sum((step(u0)[0] - target) ** 2)

    grads = jax.jit(jax.grad(loss))(params)
    direction = random_like(getkey(), params)
    directional = tree_vdot(grads, direction)
    np.testing.assert_allclose(
        directional, central_difference(loss, params, direction), rtol=1e-6
    )


def test_checkpoints_resume_exactly_and_load_for_evaluation(one_trajectory, tmp_path):
    config = dp.training.TrainConfig(
        num_train_steps=8, validate_every=3, mode="sup-2", jaws=True, **TINY
    )
    straight, pieces = tmp_path / "straight", tmp_path / "pieces"
    full = dp.training.train(config, one_trajectory, straight, progress=False).summary
    # interrupted after step 3 (a checkpoint), then resumed by the same call
    part = dp.training.train(
        config, one_trajectory, pieces, until=3, progress=False
    ).summary
    assert not part["finished"] and part["step"] == 3
    assert not (pieces / "summary.json").exists()
    resumed = dp.training.train(config, one_trajectory, pieces, progress=False).summary
    assert resumed["finished"] and resumed["step"] == 8
    for name in ("checkpoint.eqx", "best.eqx"):
        assert (straight / name).read_bytes() == (pieces / name).read_bytes(), name
    strip = [{k: v for k, v in e.items() if k != "seconds"} for e in _log(straight)]
    assert strip == [
        {k: v for k, v in e.items() if k != "seconds"} for e in _log(pieces)
    ]
    assert full["best_valid_nrmse"] == resumed["best_valid_nrmse"]
    # a finished run is not trained again
    again = dp.training.train(config, one_trajectory, pieces, progress=False).summary
    assert again["step"] == 8 and len(_log(pieces)) == len(strip)

    # the run as an evaluation model: best by validation, and last
    best = dp.training.load_run(straight)
    last = dp.training.load_run(straight, which="last")
    result = dp.evaluation.evaluate(best, one_trajectory, split="valid")
    assert np.isclose(
        np.mean(result.metrics["nrmse"][:, : config.resolved(9)["valid_num_steps"]]),
        full["best_valid_nrmse"],
        rtol=1e-4,
    )
    assert isinstance(last, dp.evaluation.AbstractModel)


def test_batches_are_sharded_over_local_devices(one_trajectory, tmp_path):
    """Two forced CPU devices: the batch is split between them and the step's
    result equals the single-device run's to float32 round-off."""
    script = (
        "import json, sys, diffphys as dp\n"
        "c = dp.training.TrainConfig(num_train_steps=4, validate_every=4, width=8,"
        " modes=4, num_layers=2, batch_size=4)\n"
        "s = dp.training.train(c, sys.argv[1], sys.argv[2], progress=False).summary\n"
        "print(json.dumps(s))\n"
    )
    results = {}
    for devices in (1, 2):
        env = dict(
            os.environ,
            XLA_FLAGS=os.environ.get("XLA_FLAGS", "")
            + f" --xla_force_host_platform_device_count={devices}",
            JAX_PLATFORMS="cpu",
        )
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                script,
                str(one_trajectory),
                tmp_path / f"r{devices}",
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        results[devices] = json.loads(out.stdout.strip().splitlines()[-1])
    assert results[1]["devices"] == 1 and results[2]["devices"] == 2
    np.testing.assert_allclose(
        results[2]["best_valid_nrmse"], results[1]["best_valid_nrmse"], rtol=1e-4
    )
    a = _log(tmp_path / "r1")
    b = _log(tmp_path / "r2")
    np.testing.assert_allclose(
        [e["loss"] for e in a if "loss" in e],
        [e["loss"] for e in b if "loss" in e],
        rtol=1e-4,
    )


def test_cli_train_then_evaluate_the_run(one_trajectory, tmp_path):
    run = tmp_path / "run"
    result = run_cli(
        "train",
        "--data",
        one_trajectory,
        "--out",
        run,
        "--model",
        "dymixop",
        "--steps",
        "4",
        "--batch-size",
        "2",
        "--width",
        "4",
        "--modes",
        "4",
        "--layers",
        "1",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert "finished" in result.stdout
    record = json.loads((run / "config.json").read_text())
    assert record["train"]["model"] == "dymixop" and record["model"]["tau"] > 0
    report = tmp_path / "report"
    result = run_cli(
        "evaluate",
        "--model",
        run,
        "--model",
        "solver:burgers:num_points=16",
        "--data",
        one_trajectory,
        "--out",
        report,
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads((report / "metrics.json").read_text())
    assert len(metrics["models"]) == 2


def test_train_bad_input(one_trajectory, tmp_path):
    base = ["train", "--data", one_trajectory, "--steps", "2", "--quiet"]
    base += ["--batch-size", "2", "--width", "4", "--modes", "4", "--layers", "1"]
    cases = [
        (["--out", tmp_path / "a", "--model", "unet"], "Unknown model 'unet'"),
        (["--out", tmp_path / "b", "--mode", "sup-0"], "Unknown training mode"),
        (["--out", tmp_path / "c", "--batch-size", "64"], "lower --batch-size"),
        (["--out", tmp_path / "d", "--modes", "40"], "--modes 40 needs at least"),
        (["--out", tmp_path / "e", "--jaws", "--spectral-penalty", "1"], "not both"),
        (
            ["--out", tmp_path / "f", "--mode", "correction", "--solver", "rk4"],
            "Unknown solver spec",
        ),
    ]
    for extra, message in cases:
        result = run_cli(*base, *extra)
        assert_one_line_error(result, message)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert_one_line_error(run_cli(*base, "--out", foreign), "not a diffphys run")
    assert (foreign / "notes.txt").read_text() == "mine"
    run = tmp_path / "run"
    assert run_cli(*base, "--out", run).returncode == 0
    other = run_cli(*base, "--out", run, "--lr", "1e-2")
    assert_one_line_error(
        other, "holds another run (different options: --lr 0.001 → 0.01)"
    )
    # More steps on a finished run extend it (and say so); fewer are another run.
    longer = list(base)
    longer[longer.index("--steps") + 1] = "3"
    result = run_cli(*longer, "--out", run)
    assert result.returncode == 0, result.stderr
    assert "extending the run from 2 to 3 steps" in result.stdout
    assert json.loads((run / "summary.json").read_text())["step"] == 3
    assert_one_line_error(run_cli(*base, "--out", run), "--steps 3 → 2")
    assert run_cli(*base, "--out", run, "--lr", "1e-2", "--overwrite").returncode == 0
    # evaluation of a folder that is no run, and of a run on another PDE's grid
    assert_one_line_error(
        run_cli(
            "evaluate",
            "--model",
            foreign,
            "--data",
            one_trajectory,
            "--out",
            tmp_path / "r",
        ),
        "not a diffphys training run",
    )
