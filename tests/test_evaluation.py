"""Rollout metrics, the evaluation engine, reports and `diffphys evaluate`."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_one_line_error, run_cli

import diffphys as dp


ev = dp.evaluation


DATA = dict(
    num_samples=10,
    num_points=64,
    num_steps=12,
    split="0.6,0.2,0.2",
    params={"nu": "0.01,0.03"},
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval") / "ds"
    config = dp.datasets.make_config("burgers", **DATA)
    dp.datasets.generate(config, folder)
    return folder


# --------------------------------------------------------------------------------
# Metrics against hand-computed values


def test_pointwise_metrics_by_hand():
    true = jnp.array([[[1.0, -1.0, 1.0, -1.0]], [[2.0, 0.0, -2.0, 0.0]]])
    pred = jnp.array([[[1.0, -1.0, 1.0, -1.0]], [[1.0, 0.0, -1.0, 0.0]]])
    # step 0 exact; step 1 error (1, 0, -1, 0): MSE 1/2, ‖e‖ = √2, ‖u‖ = √8
    np.testing.assert_allclose(ev.rmse(pred, true), [0.0, np.sqrt(0.5)])
    np.testing.assert_allclose(ev.nrmse(pred, true), [0.0, 0.5])
    # unbiased Var_x(true_1) = 8 / 3: VRMSE = sqrt(0.5 / (8/3 + 1e-7)), one channel
    np.testing.assert_allclose(
        ev.vrmse(pred, true), [[0.0], [np.sqrt(0.5 / (8 / 3 + 1e-7))]]
    )
    # pred_1 = true_1 / 2: perfectly correlated
    np.testing.assert_allclose(ev.correlation(pred, true), [1.0, 1.0])
    np.testing.assert_allclose(ev.correlation(-pred, true), [-1.0, -1.0])
    assert float(ev.correlation(jnp.zeros_like(true), true)[0]) == 0.0
    # channels: nRMSE sums the normalised errors of each channel
    two = jnp.concatenate([true, true], axis=1)
    off = jnp.concatenate([pred, true], axis=1)
    np.testing.assert_allclose(ev.nrmse(off, two), [0.0, 0.5])
    np.testing.assert_allclose(ev.nrmse(jnp.concatenate([pred, pred], 1), two), [0, 1])


def test_vrmse_is_the_wells_per_channel_formula():
    # The Well's VRMSE written out on its own layout (T, *N, C), channels last:
    # sqrt(mean_x (x - y)^2 / (std_x(y)^2 + 1e-7)), torch's unbiased std.
    rng = np.random.default_rng(0)
    true = rng.normal(size=(3, 2, 8, 6)) * np.array([1.0, 5.0])[:, None, None]
    pred = true + rng.normal(size=true.shape) * 0.3
    x, y = np.moveaxis(pred, 1, -1), np.moveaxis(true, 1, -1)
    mse = np.mean((x - y) ** 2, axis=(1, 2))
    well = np.sqrt(mse / (np.var(y, axis=(1, 2), ddof=1) + 1e-7))
    ours = np.asarray(ev.vrmse(jnp.asarray(pred), jnp.asarray(true)))
    assert ours.shape == (3, 2)
    np.testing.assert_allclose(ours, well, rtol=1e-12)
    # Predicting the spatial mean scores sqrt((n - 1) / n), not 1.
    flat = np.broadcast_to(true.mean(axis=(2, 3), keepdims=True), true.shape)
    np.testing.assert_allclose(
        ev.vrmse(jnp.asarray(flat), jnp.asarray(true)), np.sqrt(47 / 48), rtol=1e-6
    )


def test_conservation_principle_and_blowup_by_hand():
    u = jnp.array(
        [[[1.0, 1.0, 1.0, 1.0]], [[1.0, 2.0, 1.0, 1.0]], [[0.0, 1.0, 1.0, 1.0]]]
    )
    # ∫u dx with dx = 2/4: 2, 2.5, 1.5 → drift 0, 0.5, 0.5
    np.testing.assert_allclose(ev.mass_drift(u, domain_extent=2.0), [0, 0.5, 0.5])
    # bound max|u_0| = 1: excess 0, 1, 0
    np.testing.assert_allclose(
        ev.max_principle_violation(u, u[:1].repeat(3, 0)), [0, 1, 0]
    )
    assert int(ev.blowup_step(u)) == -1
    assert int(ev.blowup_step(u.at[2, 0, 1].set(jnp.nan))) == 2
    assert int(ev.blowup_step(u.at[1, 0, 3].set(jnp.inf))) == 1
    corr = jnp.array([1.0, 0.9, 0.7, 0.95])
    assert int(ev.high_correlation_steps(corr, 0.8)) == 2
    assert int(ev.high_correlation_steps(corr, 0.5)) == 4  # never fails: the horizon
    assert int(ev.high_correlation_steps(corr.at[1].set(jnp.nan), 0.5)) == 1


def test_spectral_errors_split_the_rmse_by_band():
    n = 64
    x = jnp.arange(n, dtype=float) / n
    true = jnp.zeros((2, 1, n))
    # error: mode 2 (low band) amplitude 1 at step 0, mode 7 (mid) + 20 (high) at 1
    error = jnp.stack(
        [
            jnp.sin(2 * jnp.pi * 2 * x)[None],
            (0.5 * jnp.cos(2 * jnp.pi * 7 * x) + 0.25 * jnp.sin(2 * jnp.pi * 20 * x))[
                None
            ],
        ]
    )
    bands = ev.spectral_errors(error, true)
    # RMS of a sine of amplitude a is a / √2
    np.testing.assert_allclose(bands[0], [1 / np.sqrt(2), 0, 0], atol=1e-12)
    np.testing.assert_allclose(
        bands[1], [0, 0.5 / np.sqrt(2), 0.25 / np.sqrt(2)], atol=1e-12
    )
    np.testing.assert_allclose(
        jnp.sum(bands**2, axis=1), ev.rmse(error, true) ** 2, rtol=1e-12
    )
    # 2D: the radial shell floor(|k|) of k = (3, 4) is 5 (mid band)
    grid = jnp.meshgrid(x, x, indexing="ij")
    field = jnp.sin(2 * jnp.pi * (3 * grid[0] + 4 * grid[1]))[None, None]
    bands = ev.spectral_errors(field, jnp.zeros_like(field))
    np.testing.assert_allclose(bands[0], [0, 1 / np.sqrt(2), 0], atol=1e-12)


def test_energy_spectrum_and_aggregates():
    n = 32
    x = jnp.arange(n, dtype=float) / n
    spectrum = ev.energy_spectrum(jnp.sin(2 * jnp.pi * 3 * x)[None])
    expected = np.zeros(n // 2 + 1)
    expected[3] = 0.25  # ½ mean(sin²) = 1/4
    np.testing.assert_allclose(spectrum, expected, atol=1e-12)
    stats = ev.summarise(np.array([[1.0, 2.0, np.nan], [3.0, np.inf, 5.0]]))
    np.testing.assert_allclose(stats["mean"], [2.0, 2.0, 5.0])
    np.testing.assert_array_equal(stats["count"], [2, 1, 1])
    assert ev.geometric_mean([1.0, 100.0, 1e9], first=2) == pytest.approx(10.0)


def test_resample_is_exact_for_band_limited_fields():
    x = jnp.arange(48, dtype=float) / 48
    grid = jnp.meshgrid(x, x, indexing="ij")
    u = jnp.stack(
        [jnp.sin(2 * jnp.pi * (2 * grid[0] - 3 * grid[1])) + 0.3, grid[0] * 0]
    )
    coarse = ev.resample(u, 16)
    xc = jnp.arange(16, dtype=float) / 16
    gc = jnp.meshgrid(xc, xc, indexing="ij")
    np.testing.assert_allclose(
        coarse[0], jnp.sin(2 * jnp.pi * (2 * gc[0] - 3 * gc[1])) + 0.3, atol=1e-12
    )
    np.testing.assert_allclose(ev.resample(coarse, 48), u, atol=1e-12)


# --------------------------------------------------------------------------------
# Engine


def test_a_perfect_model_scores_zero_over_the_whole_horizon(data):
    result = ev.evaluate("solver:burgers", data, split="test")
    s = result.summary()
    assert result.metrics["nrmse"].shape == (2, 12)
    assert np.all(result.metrics["rmse"] == 0) and np.all(result.spectral == 0)
    np.testing.assert_allclose(result.metrics["correlation"], 1.0, atol=1e-6)
    assert s["high_correlation_time_median"] == pytest.approx(12 * 0.01)
    assert s["blowups"] == 0 and s["mass_drift_max"] < 1e-6


def test_a_conservative_solver_drifts_at_round_off(data):
    result = ev.evaluate("solver:burgers-fv", data, split="valid")
    # float32 data, N = 64, 12 frames: round-off of Σ u dx with |u| <= 2
    assert result.metrics["mass_drift"].max() < 1e-6
    assert result.summary()["max_principle_violation_max"] < 1e-6
    # and the metric itself in float64 on a long FV rollout
    stepper = dp.solvers.BurgersFV(1, 1.0, 128, 1e-3, viscosity=0.0, max_speed=1.5)
    u0 = jnp.sin(2 * jnp.pi * jnp.arange(128, dtype=float) / 128)[None] + 0.2
    traj = dp.solvers.rollout(stepper, u0, 500)
    assert float(ev.mass_drift(traj).max()) < 1e-13


def test_a_blow_up_is_reported_at_its_step_and_evaluation_goes_on(data):
    # float32 overflows (3.4e38) at the 10th step of u -> 1e4 u for 0.04 < |u0| < 3
    exploding = ev.Stepper(lambda u: u * 1e4, name="explodes")
    result = ev.evaluate(exploding, data, split="test")
    assert result.blowup.tolist() == [10, 10]
    drift = result.metrics["mass_drift"]  # step 1.. ; index 9 is step 10
    assert np.isfinite(drift[:, :9]).all() and not np.isfinite(drift[:, 9:]).any()
    assert result.summary()["blowups"] == 2
    sane = ev.evaluate("solver:burgers", data, split="test")  # and the next model runs
    assert sane.summary()["blowups"] == 0


def test_coarse_baselines_are_worse_than_the_reference_but_close(data):
    fine = ev.evaluate("solver:burgers:num_points=48", data, split="test")
    coarse = ev.evaluate("solver:burgers:num_points=16", data, split="test")
    a, b = fine.summary(), coarse.summary()
    assert 0 < a["nrmse_geometric_mean"] < b["nrmse_geometric_mean"] < 1


# --------------------------------------------------------------------------------
# Reports and the command line


def test_cli_evaluate_writes_the_report(data, tmp_path):
    out = tmp_path / "report"
    result = run_cli(
        "evaluate", "--model", "solver:burgers:num_points=32",
        "--model", "solver:burgers-fv", "--data", data, "--split", "test",
        "--steps", "10", "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    config = dp.datasets.make_config("burgers", **DATA)
    assert metrics["dataset"]["config_hash"] == config.hash
    assert metrics["command"].startswith("diffphys evaluate --model")
    model = metrics["models"]["solver:burgers-fv"]
    assert len(model["per_step"]["nrmse"]["median"]) == 10
    assert set(model["summary"]) >= {"nrmse_geometric_mean", "blowups"}
    report = (out / "report.md").read_text()
    assert "| `solver:burgers:num_points=32` |" in report
    assert "| `solver:burgers-fv` |" in report
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == 5
    for name in pngs:
        assert (out / name).stat().st_size > 10_000
    # a second run needs --overwrite; with it the report is replaced
    args = ["evaluate", "--model", "solver:burgers", "--data", data, "--out", out]
    again = run_cli(*args)
    assert again.returncode != 0 and "--overwrite" in again.stderr
    again = run_cli(*args, "--overwrite")
    assert again.returncode == 0, again.stderr
    assert len(list(out.glob("heatmaps_*.png"))) == 1


def test_evaluate_bad_input(data, tmp_path):
    out = tmp_path / "r"
    base = ["evaluate", "--data", data, "--out", out]
    for args, message in [
        (["--model", "fno:foo"], "Unknown model spec 'fno:foo'"),
        (["--model", "solver:hat"], "Unknown scenario 'hat'"),
        (
            ["--model", "solver:heat"],
            "takes parameters ['k']; the dataset provides ['nu']",
        ),
        (["--model", "solver:burgers:dx=3"], "unknown option 'dx=3'"),
        (
            ["--model", "solver:burgers-2d"],
            "is for 2D states with 2 channels; the dataset",
        ),
        (["--model", "solver:burgers:save_every=1"], "save_every >="),
        (["--model", "solver:burgers", "--split", "dev"], "Unknown split 'dev'"),
        (["--model", "solver:burgers", "--steps", "50"], "--steps must be in 1..12"),
        (["--model", "solver:burgers", "--data", tmp_path], "not a diffphys dataset"),
    ]:
        assert_one_line_error(run_cli(*base, *args), message)
    assert not out.exists()
    with pytest.raises(
        ValueError, match=r"maps a state of shape \(1, 64\) to \(1, 32\)"
    ):
        ev.evaluate(ev.Stepper(lambda u: u[:, ::2], name="half"), data)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert_one_line_error(
        run_cli(
            "evaluate", "--model", "solver:burgers", "--data", data, "--out", foreign
        ),
        "holds no diffphys report",
    )


def test_open_domain_metrics_follow_the_boundary_fluxes(tmp_path):
    # Advection with inflow u(0, t) = 1: the mass grows. The scenario's own solver on
    # the data's grid is a perfect model; it must score zero mass error against the
    # boundary-flux budget, no max-principle excess, and no (periodic) spectral
    # errors, where the closed-domain metrics would show the inflow as drift.
    config = dp.datasets.make_config(
        "advection", num_samples=2, num_points=32, num_steps=5, split="0.5,0,0.5"
    )
    dp.datasets.generate(config, tmp_path / "ds")
    result = ev.evaluate("solver:advection", tmp_path / "ds")
    assert np.all(result.metrics["nrmse"] == 0)
    closed = ev.mass_drift(jnp.asarray(result.examples["prediction"][0]))
    assert closed[-1] > 0.01  # the inflow, read as drift on a closed domain
    summary = result.summary()
    assert summary["mass_drift_max"] < 1e-6
    assert summary["max_principle_violation_max"] == 0
    assert np.isnan(result.spectral).all()
    assert "boundary-flux budget" in summary["metric_notes"]["mass_drift"]
    ev.write_report([result], tmp_path / "report")
    report = (tmp_path / "report" / "report.md").read_text()
    assert "b the solver's boundary-flux budget" in report
    assert "No energy spectra" in report


def test_evaluate_a_vector_dataset(tmp_path):
    config = dp.datasets.make_config(
        "burgers-2d", num_samples=4, num_points=16, num_steps=3, split="0.5,0,0.5"
    )
    dp.datasets.generate(config, tmp_path / "ds")
    result = ev.evaluate("solver:burgers-2d:num_points=8", tmp_path / "ds")
    assert result.metrics["vrmse"].shape == (2, 3) and result.spectral.shape == (
        2,
        3,
        3,
    )
    ev.write_report([result], tmp_path / "report")
    assert (
        tmp_path / "report" / "heatmaps_solver_burgers-2d_num_points_8.png"
    ).exists()
    # 2D heatmaps: each sample and component, at mid-horizon and at the end,
    # labelled with the component and the time.
    from diffphys.evaluation._report import heatmap_panels

    rows = heatmap_panels(result)
    assert len(rows) == 2 * 2 and len(rows[0]) == 2 * 2 + 1
    titles = [p["title"] for row in rows for p in row]
    interval = result.config.frame_interval
    assert f"truth velocity_y, t = {interval:.3g}, sample 1" in titles
    assert f"|error| velocity_x, t = {3 * interval:.3g}" in titles
    report = (tmp_path / "report" / "report.md").read_text()
    assert "nRMSE geo-mean (first 3 steps)" in report
    assert np.isfinite(result.metrics["nrmse"]).all()
    # Two velocity components: each channel's VRMSE, and their mean as the summary.
    channels = [result.metrics[f"vrmse_channel_{c}"] for c in range(2)]
    np.testing.assert_allclose(np.mean(channels, axis=0), result.metrics["vrmse"])
    per_channel = result.summary()["vrmse_final_median_per_channel"]
    assert len(per_channel) == 2 and per_channel != [per_channel[0]] * 2
