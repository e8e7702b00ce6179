"""The scenarios `ks`, `ks-2d`, `ns-2d`, `diffusion-sorption` and `darcy` through the
whole pipeline, tiny: generation (warm-up, the steady layout), the files, the
loader, PDEBench's layouts, coarse solver baselines on non-periodic grids,
conservation metrics on the declared channels, and training a steady map."""

import h5py
import jax.numpy as jnp
import numpy as np
import pytest
import yaml
from helpers import assert_one_line_error, run_cli

import diffphys as dp


D = dp.datasets

# Tiny versions of the scenarios' defaults.
_TIME_DEPENDENT = {
    "ks": dict(num_points=128, num_steps=3),  # dx < 0.5: chaos needs it
    "ks-2d": dict(num_points=64, num_steps=2),
    "ns-2d": dict(num_points=16, num_steps=2),
}


@pytest.fixture(scope="module")
def sorption(tmp_path_factory):
    """One diffusion–sorption dataset for the tests below (its solver compiles
    once per shape)."""
    config = D.make_config(
        "diffusion-sorption", num_samples=5, num_points=32, num_steps=2,
        split="0.6,0.2,0.2",
    )  # fmt: skip
    return config, D.generate(config, tmp_path_factory.mktemp("ds") / "ds")


@pytest.mark.parametrize("name", list(_TIME_DEPENDENT) + ["diffusion-sorption"])
def test_time_dependent_scenarios_store_their_solvers_trajectories(
    name, tmp_path, sorption
):
    if name == "diffusion-sorption":
        config, out = sorption
    else:
        options = _TIME_DEPENDENT[name]
        config = D.make_config(name, num_samples=2, split="1,0,0", **options)
        out = D.generate(config, tmp_path / name)
    windows = D.open(out, n_input=1, n_output=config.num_steps)
    item = windows[1]
    assert "constant_fields" not in item
    sc = config.scenario_obj
    params = {  # in this test's float64 (the files are float32)
        k: jnp.asarray(v, float)
        for k, v in zip(windows.scalar_names, item["constant_scalars"], strict=True)
    }
    # The frames after the first are the scenario's stepper from the first (the
    # warm-up, where there is one, happened before it).
    stepper = sc.make_stepper(
        config.domain_extent, config.num_points, config.dt, **params
    )
    first = jnp.asarray(item["input_fields"][0], float)
    frames = dp.solvers.rollout(
        stepper, first, config.num_steps, save_every=config.save_every
    )
    np.testing.assert_allclose(frames[1:], item["output_fields"], rtol=2e-4, atol=2e-5)
    if name == "ks":  # 100 time units of warm-up: chaotic, not the smooth data
        assert np.max(np.abs(item["input_fields"])) > 1.2
    with D.check_file(out / config.shards()[0].path) as f:
        assert f.attrs["grid_type"] == "cartesian"
    stats = yaml.safe_load((out / "stats.yaml").read_text())
    assert stats["std"]["u" if "u" in stats["std"] else "vorticity"] > 0


@pytest.fixture(scope="module")
def darcy(tmp_path_factory):
    config = D.make_config("darcy", num_samples=10, num_points=17, split="0.6,0.2,0.2")
    return config, D.generate(config, tmp_path_factory.mktemp("darcy") / "darcy")


def test_darcy_is_stored_as_a_steady_dataset(darcy):
    config, out = darcy
    assert (config.num_steps, config.num_frames) == (0, 1)
    with D.check_file(out / config.shards()[0].path) as f:
        a, u = f["t0_fields/a"], f["t0_fields/u"]
        assert a.shape == (6, 17, 17) and not a.attrs["time_varying"]
        assert u.shape == (6, 1, 17, 17) and u.attrs["time_varying"]
        assert list(f["t0_fields"].attrs["field_names"]) == ["u", "a"]
        x = f["dimensions/x"][...]
        coefficient, solution = a[2], u[2, 0]
    np.testing.assert_allclose(x, np.linspace(0, 1, 17), atol=1e-7)  # the nodes
    # The solution is the Darcy solver's for the stored coefficient.
    expected = dp.solvers.Darcy(17)(jnp.asarray(coefficient, float)[None])[0]
    np.testing.assert_allclose(solution, expected, rtol=1e-4, atol=1e-8)
    assert set(np.unique(coefficient)) == {3.0, 12.0}
    item = D.open(out)[2]
    assert item["input_fields"].shape == (0, 1, 17, 17)
    assert item["output_fields"].shape == (1, 1, 17, 17)
    np.testing.assert_array_equal(item["constant_fields"][0], coefficient)
    with pytest.raises(ValueError, match="is steady.*n_input=0, n_output=1"):
        D.open(out, n_input=1)
    meta = yaml.safe_load((out / "darcy.yaml").read_text())
    assert meta["constant_field_names"][0] == ["a"]
    stats = yaml.safe_load((out / "stats.yaml").read_text())
    assert stats["mean"]["a"] == pytest.approx(
        np.mean(np.concatenate([
            h5py.File(out / s.path)["t0_fields/a"][...].ravel()
            for s in config.shards() if s.split == "train"
        ])), rel=1e-6,
    )  # fmt: skip
    with pytest.raises(ValueError, match="steady: each sample is one frame"):
        D.make_config("darcy", num_steps=3)
    result = run_cli("info", out)
    assert result.returncode == 0, result.stderr
    assert "steady: inputs (constant fields) and one solution frame" in result.stdout
    assert_one_line_error(
        run_cli("generate", "darcy", "--out", out.parent / "x", "--num-steps", "3"),
        "is steady",
    )


def test_pdebench_layouts_of_darcy_and_diffusion_sorption(darcy, sorption, tmp_path):
    config, out = darcy
    exported = D.export_pdebench(out, tmp_path / "darcy.hdf5")
    with h5py.File(exported) as f:
        assert f["tensor"].shape == (10, 1, 17, 17) and f["nu"].shape == (10, 17, 17)
        assert f.attrs["beta"] == 1.0
        test_ratio = f.attrs["diffphys_test_ratio"]
        first_test = f["nu"][0]
    assert int(10 * test_ratio) == 2  # PDEBench's test set: the first samples
    test_shard = [s for s in config.shards() if s.split == "test"][0]
    with h5py.File(out / test_shard.path) as f:
        np.testing.assert_array_equal(f["t0_fields/a"][0], first_test)

    ds, folder = sorption
    assert_one_line_error(
        run_cli("export", folder, "--out", tmp_path / "ds.hdf5"), "ending in .h5"
    )
    exported = D.export_pdebench(folder, tmp_path / "ds.h5")
    with h5py.File(exported) as f:
        groups = sorted(f)
        assert groups == ["0000", "0001", "0002", "0003", "0004"]
        assert f["0000/data"].shape == (3, 32, 1)
        np.testing.assert_allclose(f["0000/grid/t"][...], [0.0, 5.0, 10.0])
        np.testing.assert_allclose(f["0000/grid/x"][...], (np.arange(32) + 0.5) / 32)
        ratio = f.attrs["diffphys_test_ratio"]
        last = f["0004/data"][...]
    # PDEBench's FNODatasetMult takes the groups from int(N (1 − r)) on: ours.
    assert int(5 * (1 - ratio)) == 4
    test_shard = [s for s in ds.shards() if s.split == "test"][0]
    with h5py.File(folder / test_shard.path) as f:
        np.testing.assert_array_equal(f["t0_fields/u"][0][..., None], last)
    summary = D.describe(exported)
    assert summary["arrays"]["<sample>/data"] == [5, 3, 32, 1]


def test_sorption_mass_is_measured_with_the_solvers_own_mass(sorption):
    _, out = sorption
    fine = dp.evaluation.evaluate("solver:diffusion-sorption", out)
    assert fine.summary()["nrmse_final_median"] < 1e-6
    # The conserved mass is ∫M(u), sorbed included, balanced by the fluxes: the
    # solver keeps it to float32 Newton tolerances, while ∫u alone drifts by the
    # sorbed mass (measured 0.3 on these data).
    assert fine.summary()["mass_drift_max"] < 1e-3
    assert "own conserved quantity" in fine.summary()["metric_notes"]["mass_drift"]
    still = dp.evaluation.evaluate(lambda u: u, out, name="persistence")
    assert still.summary()["mass_drift_max"] > 0.01


def test_coarse_baselines_on_cell_grids_interpolate(tmp_path):
    # A non-periodic grid: the coarse solver's states are interpolated in and out.
    config = D.make_config("pme", num_samples=2, num_steps=4, split="0.5,0,0.5")
    out = D.generate(config, tmp_path / "pme")
    coarse = dp.evaluation.evaluate("solver:pme:num_points=64", out)
    still = dp.evaluation.evaluate(lambda u: u, out, name="persistence")
    error = coarse.summary()["nrmse_final_median"]
    # Half the cells: not exact, and far better than keeping the initial state.
    assert 1e-5 < error < 0.2 * still.summary()["nrmse_final_median"]


def test_mass_drift_uses_the_declared_conserved_channels(tmp_path):
    # Vector Burgers in convective form conserves no channel: no mass drift.
    config = D.make_config(
        "burgers-2d", num_samples=2, num_points=16, num_steps=2, split="0.5,0,0.5"
    )
    out = D.generate(config, tmp_path / "b2")
    summary = dp.evaluation.evaluate("solver:burgers-2d", out).summary()
    assert np.isnan(summary["mass_drift_max"])
    assert "declares no conserved channel" in summary["metric_notes"]["mass_drift"]
    assert D.get_scenario("ns-2d").conserved_channels == (0,)


def test_a_steady_map_trains_and_evaluates(darcy, tmp_path):
    config, out = darcy
    train = dp.training.TrainConfig(
        num_train_steps=60, batch_size=2, width=8, modes=4, num_layers=2, clip_norm=None
    )
    result = dp.training.train(train, out, tmp_path / "run")
    log = [
        __import__("json").loads(line)
        for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    ]
    losses = [e["loss"] for e in log if "loss" in e]
    assert losses[-1] < 0.1 * losses[0]  # it learns the map's scale at least
    model = dp.training.load_run(tmp_path / "run")
    evaluation = dp.evaluation.evaluate(model, out)
    assert evaluation.num_steps == 1 and evaluation.metrics["nrmse"].shape == (2, 1)
    summary = evaluation.summary()
    assert np.isfinite(summary["nrmse_final_median"]) and summary["blowups"] == 0
    assert np.isnan(summary["mass_drift_max"])
    coarse = dp.evaluation.evaluate("solver:darcy:num_points=9", out)
    assert coarse.summary()["nrmse_final_median"] < 0.2
    report = dp.evaluation.write_report([evaluation, coarse], tmp_path / "report")
    assert "scored once" in (report / "report.md").read_text()
    with pytest.raises(ValueError, match="steady.*without mode='sup-2'"):
        dp.training.train(
            dp.training.TrainConfig(mode="sup-2", num_train_steps=2),
            out,
            tmp_path / "x",
        )
    assert result.summary["finished"]


def test_ns_scenario_draws_fno_like_vorticity(getkey):
    from diffphys.datasets._pde_scenarios import fno_vorticity

    w = fno_vorticity(64, key=getkey())
    assert w.shape == (1, 64, 64) and abs(float(jnp.mean(w))) < 1e-12
    # Smooth, large-scale: the power per mode falls as (4π²|k|² + 49)^{-5/2},
    # 10^3.6 times from the shell 1 <= |k| < 3 to 8 <= |k| < 12 (shell means).
    power = jnp.abs(jnp.fft.fft2(w[0])) ** 2
    k = jnp.fft.fftfreq(64, 1 / 64)
    magnitude = jnp.sqrt(k[:, None] ** 2 + k[None, :] ** 2)

    def shell(lo, hi):
        inside = (magnitude >= lo) & (magnitude < hi)
        return float(
            jnp.sum(jnp.where(inside, power, 0.0)) / jnp.sum(inside.astype(float))
        )

    assert shell(1, 3) > 300 * shell(8, 12)


def test_regrid_is_interpolation_on_cells_and_nodes():
    regrid = dp.evaluation.regrid
    # Darcy's nodes: 17 -> 9 keeps every other node exactly; back is linear.
    darcy = D.get_scenario("darcy")
    x = jnp.linspace(0.0, 1.0, 17)
    u = (x[:, None] ** 2 + 0 * x[None, :])[None]
    coarse = regrid(u, 9, darcy, 1.0)
    np.testing.assert_array_equal(coarse, u[:, ::2, ::2])
    back = regrid(coarse, 17, darcy, 1.0)
    np.testing.assert_allclose(back[:, ::2], u[:, ::2], atol=1e-15)
    # Cell centres: a linear profile survives 32 -> 16 -> 32 except in the end
    # half-cells, where values are held.
    pme = D.get_scenario("pme")
    centres = jnp.asarray(pme.coordinates(32, 1.0))
    line = (2 * centres + 1)[None]
    again = regrid(regrid(line, 16, pme, 1.0), 32, pme, 1.0)
    np.testing.assert_allclose(again[:, 1:-1], line[:, 1:-1], atol=1e-13)
