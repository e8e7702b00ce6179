"""Dataset generation, files, engines, export and loading."""

import json
import multiprocessing
import pickle
import shutil
import signal
import subprocess
import sys
import time

import h5py
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import yaml
from helpers import assert_one_line_error, run_cli
from well_schema import problems

import diffphys as dp


CLI = [sys.executable, "-m", "diffphys"]
SMALL = dict(
    num_samples=12, num_points=64, num_steps=8, shard_size=3, params={"nu": "0.01,0.02"}
)
SMALL_ARGS = [
    "--num-samples", "12", "--num-points", "64", "--num-steps", "8",
    "--shard-size", "3", "--param", "nu=0.01,0.02",
]  # fmt: skip


def _shard_files(folder):
    return sorted(p.relative_to(folder) for p in folder.glob("data/*/*.hdf5"))


def _arrays(folder):
    out = {}
    for rel in _shard_files(folder):
        with h5py.File(folder / rel) as f:
            out[str(rel)] = (f["t0_fields/u"][...], f["scalars/nu"][...])
    return out


def _same_dataset(a, b):
    ma = json.loads((a / "manifest.json").read_text())
    mb = json.loads((b / "manifest.json").read_text())
    assert ma["shards"] == mb["shards"]  # paths, sample ranges, sizes, checksums
    for (ka, (ua, pa)), (kb, (ub, pb)) in zip(
        _arrays(a).items(), _arrays(b).items(), strict=True
    ):
        assert ka == kb
        np.testing.assert_array_equal(ua, ub)
        np.testing.assert_array_equal(pa, pb)
    for name in ("stats.yaml", "burgers.yaml"):
        assert (a / name).read_text() == (b / name).read_text()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ref") / "ds"
    dp.datasets.generate(dp.datasets.make_config("burgers", **SMALL), folder)
    return folder


# --------------------------------------------------------------------------------
# Config and parameters


def test_default_config_follows_the_stability_limit():
    config = dp.datasets.make_config("burgers")
    sc = dp.datasets.get_scenario("burgers")
    limit = sc.max_dt(1.0, config.num_points)
    assert config.dt <= limit < config.dt * config.save_every / (config.save_every - 1)
    assert config.dt * config.save_every == pytest.approx(sc.frame_interval)
    assert (config.num_points, config.num_steps) == (1024, 200)
    with pytest.raises(ValueError, match="stability limit"):
        dp.datasets.make_config("burgers", dt=10 * limit)
    # The finite-volume limit depends on the largest viscosity drawn.
    low = dp.datasets.make_config("burgers-fv", params={"nu": "0.001"})
    high = dp.datasets.make_config("burgers-fv", params={"nu": "0.001:0.01"})
    assert high.dt < low.dt


def test_parameter_specs_and_draws(getkey):
    parse = dp.datasets.parse_sampler
    assert isinstance(parse("0.5"), dp.datasets.Fixed)
    uniform, log, choice = parse("1:3"), parse("0.001:0.1:log"), parse("1,2,5")
    keys = jr.split(getkey(), 4000)
    with jax.enable_x64(False):
        u = np.asarray(jax.vmap(uniform)(keys))
        lu = np.asarray(jax.vmap(log)(keys))
        c = np.asarray(jax.vmap(choice)(keys))
    assert 1 <= u.min() and u.max() <= 3 and abs(u.mean() - 2) < 0.05
    # log-uniform: log10 is uniform on [-3, -1], so its mean is -2
    assert 0.001 <= lu.min() and lu.max() <= 0.1
    assert abs(np.log10(lu).mean() + 2) < 0.05
    assert set(np.unique(c)) == {1.0, 2.0, 5.0}
    for bad in ["abc", "1:", "3:1", "0:1:log", "1:2:lin", "nan"]:
        with pytest.raises(ValueError):
            parse(bad)
    with pytest.raises(ValueError, match="admissible"):
        dp.datasets.make_config("burgers", params={"nu": "-1:1"})
    with pytest.raises(ValueError, match="no parameter 'mu'.*nu"):
        dp.datasets.make_config("burgers", params={"mu": "1"})


# --------------------------------------------------------------------------------
# Files


def test_files_follow_the_well_schema(reference):
    files = _shard_files(reference)
    assert [str(p.parent) for p in files] == ["data/test"] + ["data/train"] * 4 + [
        "data/valid"
    ]
    for rel in files:
        assert problems(reference / rel) == [], rel
    meta = yaml.safe_load((reference / "burgers.yaml").read_text())
    assert meta["n_files"] == 6 and sum(meta["n_trajectories_per_file"]) == 12
    assert meta["field_names"][0] == ["u"] and meta["spatial_resolution"] == [64]
    assert meta["constant_scalar_names"] == ["nu"]


def test_files_hold_the_solver_trajectories(reference):
    """Trajectory 4 on disk equals a rollout of the scenario's own stepper from its
    own initial condition, and keeps the periodic Burgers mass."""
    config = dp.datasets.make_config("burgers", **SMALL)
    sc = dp.datasets.get_scenario("burgers")
    with h5py.File(reference / "data/train/burgers_00001.hdf5") as f:
        u, nu = f["t0_fields/u"][1], f["scalars/nu"][1]
        assert f.attrs["diffphys_first_trajectory"] == 3

    @jax.jit
    def direct(index):
        key = jr.fold_in(jr.key(0), index)
        k_ic, k_params = jr.split(key)
        nu = sc.sampler("nu", "0.01,0.02")(jr.fold_in(k_params, 0))
        stepper = sc.make_stepper(1.0, 64, config.dt, nu=nu)
        u0 = sc.initial_condition(64, key=k_ic).astype(jnp.float32)
        return dp.solvers.rollout(stepper, u0, 8, save_every=config.save_every), nu

    with jax.enable_x64(False):
        trajectory, nu_direct = direct(4)
    assert nu == float(nu_direct)
    # float32 round-off apart (a different fusion of the same operations)
    np.testing.assert_allclose(u, np.asarray(trajectory)[:, 0], rtol=0, atol=1e-5)
    mass = u.sum(axis=1)
    assert np.abs(mass - mass[0]).max() < 1e-4 * np.abs(u).sum(axis=1).max()


def test_stats_match_the_train_split(reference):
    train = np.concatenate(
        [u for k, (u, _) in _arrays(reference).items() if "train" in k]
    ).astype(np.float64)
    stats = yaml.safe_load((reference / "stats.yaml").read_text())
    delta = np.diff(train, axis=1)
    for key, value in [
        ("mean", train.mean()),
        ("std", train.std()),
        ("rms", np.sqrt(np.mean(train**2))),
        ("std_delta", delta.std()),
        ("rms_delta", np.sqrt(np.mean(delta**2))),
    ]:
        assert stats[key]["u"] == pytest.approx(value, rel=1e-5, abs=1e-9), key


def test_vector_scenario_writes_t1_fields(tmp_path):
    config = dp.datasets.make_config(
        "burgers-2d", num_samples=3, num_points=16, num_steps=3, split="1,0,0"
    )
    dp.datasets.generate(config, tmp_path / "ds")
    (rel,) = _shard_files(tmp_path / "ds")
    assert problems(tmp_path / "ds" / rel) == []
    with h5py.File(tmp_path / "ds" / rel) as f:
        assert f["t1_fields/velocity"].shape == (3, 4, 16, 16, 2)
        assert list(f["t0_fields"].attrs["field_names"]) == []
    stats = yaml.safe_load((tmp_path / "ds/stats.yaml").read_text())
    assert len(stats["std"]["velocity"]) == 2
    # As The Well's own 2D yaml files: the distinct boundary types, not one per axis.
    meta = yaml.safe_load((tmp_path / "ds/burgers-2d.yaml").read_text())
    assert meta["boundary_condition_types"] == ["PERIODIC"]
    assert meta["field_names"][1] == ["velocity_x", "velocity_y"]
    item = dp.datasets.open(tmp_path / "ds", "train", n_input=2)[0]
    assert item["input_fields"].shape == (2, 2, 16, 16)
    # PDEBench's 2D layout of a vector field: a (samples, time, x, y) array per
    # component, named as PDEBench's CFD files name the velocity's.
    for virtual in (False, True):
        out = tmp_path / f"pdebench-{virtual}.hdf5"
        dp.datasets.export_pdebench(
            tmp_path / "ds", out, field="velocity", virtual=virtual
        )
        with (
            h5py.File(out) as exported,
            h5py.File(tmp_path / "ds" / rel) as shard,
        ):
            velocity = shard["t1_fields/velocity"][...]
            assert sorted(exported) == [
                "Vx", "Vy", "t-coordinate", "x-coordinate", "y-coordinate"
            ]  # fmt: skip
            np.testing.assert_array_equal(exported["Vx"], velocity[..., 0])
            np.testing.assert_array_equal(exported["Vy"], velocity[..., 1])


# --------------------------------------------------------------------------------
# Determinism, resumption, sharding, engines


def test_same_command_twice_gives_identical_data(reference, tmp_path):
    dp.datasets.generate(dp.datasets.make_config("burgers", **SMALL), tmp_path / "b")
    _same_dataset(reference, tmp_path / "b")
    # Running it again on a finished folder resumes: nothing is rewritten.
    stamps = {
        p: (tmp_path / "b" / p).stat().st_mtime_ns for p in _shard_files(tmp_path / "b")
    }
    dp.datasets.generate(dp.datasets.make_config("burgers", **SMALL), tmp_path / "b")
    assert stamps == {p: (tmp_path / "b" / p).stat().st_mtime_ns for p in stamps}


def test_sigkill_mid_shard_then_resume_equals_an_uninterrupted_run(tmp_path):
    args = ["--num-samples", "12", "--num-points", "512", "--num-steps", "40",
            "--shard-size", "2", "--param", "nu=0.01:0.05"]  # fmt: skip
    out = tmp_path / "killed"
    process = subprocess.Popen([*CLI, "generate", "burgers", "--out", str(out), *args])
    tmp = out / ".diffphys" / "tmp"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if _shard_files(out) and tmp.is_dir() and any(tmp.iterdir()):
            break
        time.sleep(0.002)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = _shard_files(out)
    assert 0 < len(done) < 7 and not (out / "manifest.json").exists()
    for rel in done:  # every visible file is complete and valid
        assert problems(out / rel) == []
    rerun = subprocess.run(
        [*CLI, "generate", "burgers", "--out", str(out), "-q", *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert not any(tmp.iterdir())
    # It says what it resumed and what it repaired.
    assert f"resuming: {len(done)} of 7 shards complete; 1 half-written" in rerun.stdout
    config = dp.datasets.make_config(
        "burgers", num_samples=12, num_points=512, num_steps=40, shard_size=2,
        params={"nu": "0.01:0.05"},
    )  # fmt: skip
    dp.datasets.generate(config, tmp_path / "whole")
    _same_dataset(out, tmp_path / "whole")


def test_shard_tasks_then_join_equal_a_one_shot_run(reference, tmp_path):
    config = dp.datasets.make_config("burgers", **SMALL)
    out = tmp_path / "sharded"
    for index in (2, 0):
        dp.datasets.generate(config, out, num_shards=3, shard_index=index)
    with pytest.raises(ValueError, match="unfinished dataset: 4 of 6 shards"):
        dp.datasets.open(out)
    with pytest.raises(ValueError, match="2 missing"):
        dp.datasets.join(out)
    result = run_cli("generate", "burgers", "--out", str(out), *SMALL_ARGS,
                  "--num-shards", "3", "--shard-index", "1")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not (out / "manifest.json").exists()
    result = run_cli("join", str(out))
    assert result.returncode == 0, result.stderr
    _same_dataset(reference, out)


# Ray starts its processes by fork + exec (safe); JAX warns about any fork.
@pytest.mark.slow  # about 30 s (starts a Ray cluster); make test-all
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
def test_ray_engine_with_two_workers_equals_local(reference, tmp_path):
    pytest.importorskip("ray")
    config = dp.datasets.make_config("burgers", **SMALL)
    dp.datasets.generate(config, tmp_path / "ray", engine="ray", workers=2)
    _same_dataset(reference, tmp_path / "ray")


# --------------------------------------------------------------------------------
# Export


def _exported(reference, target, *args):
    result = run_cli("export", str(reference), "--out", str(target), *args)
    assert result.returncode == 0, result.stderr
    return target


@pytest.mark.parametrize("virtual", [False, True], ids=["standalone", "virtual"])
def test_pdebench_export_follows_pdebench(reference, tmp_path, virtual):
    target = _exported(
        reference, tmp_path / "out" / "burgers_Nu.hdf5", *["--virtual"] * virtual
    )
    # A copy of the file elsewhere (here: run from another folder) reads the same.
    shutil.copy(target, tmp_path / "copy.hdf5")
    arrays = _arrays(reference)
    # PDEBench takes the first int(N * test_ratio) samples as its test set: ours.
    order = ["data/test/burgers_00000.hdf5"]
    order += [f"data/train/burgers_0000{i}.hdf5" for i in range(4)]
    order += ["data/valid/burgers_00000.hdf5"]
    config = dp.datasets.make_config("burgers", **SMALL)
    with h5py.File(tmp_path / "copy.hdf5") as f:
        tensor = f["tensor"][...]
        assert tensor.shape == (12, 9, 64) and f["tensor"].is_virtual == virtual
        np.testing.assert_array_equal(
            tensor, np.concatenate([arrays[k][0] for k in order])
        )
        # Nu in PDEBench's units: u_t + (u^2/2)_x = (Nu / pi) u_xx.
        nu = np.concatenate([arrays[k][1] for k in order])
        np.testing.assert_allclose(f["Nu"][...], np.pi * nu, rtol=1e-6)
        # PDEBench's coordinates: cell centres, and one time entry past the frames.
        dx = 1.0 / 64
        np.testing.assert_allclose(f["x-coordinate"], (np.arange(64) + 0.5) * dx)
        assert f.attrs["diffphys_x_shift"] == pytest.approx(dx / 2)
        np.testing.assert_allclose(
            f["t-coordinate"], np.arange(10) * config.frame_interval, rtol=1e-6
        )
        ratio = f.attrs["diffphys_test_ratio"]
        assert int(12 * ratio) == 1 and json.loads(f.attrs["diffphys_splits"]) == {
            "test": [0, 1],
            "train": [1, 11],
            "valid": [11, 12],
        }
    summary = dp.datasets.describe(tmp_path / "copy.hdf5")
    assert summary["kind"] == "pdebench"
    assert summary["virtual_sources"] == (6 if virtual else 0)


def test_pdebench_export_holds_the_physics_its_name_means(reference, tmp_path):
    # Fit b in u_t + u u_x = b u_xx to the exported data (spectral derivatives,
    # centred differences in time): b must be PDEBench's Nu / pi, not Nu.
    with h5py.File(_exported(reference, tmp_path / "b.hdf5")) as f:
        u, nu, t = f["tensor"][...].astype(float), f["Nu"][...], f["t-coordinate"][:]
    k = 2j * np.pi * np.fft.rfftfreq(64, 1 / 64)
    ux = np.fft.irfft(k * np.fft.rfft(u), 64)
    uxx = np.fft.irfft(k**2 * np.fft.rfft(u), 64)
    ut = (u[:, 2:] - u[:, :-2]) / (2 * (t[1] - t[0]))
    residual = ut + (u * ux)[:, 1:-1]
    lap = uxx[:, 1:-1]
    b = np.sum(residual * lap, axis=(1, 2)) / np.sum(lap * lap, axis=(1, 2))
    np.testing.assert_allclose(b, nu / np.pi, rtol=0.05)


def test_virtual_export_cannot_bind_another_dataset(reference, tmp_path):
    folder = tmp_path / "ds"
    shutil.copytree(reference, folder)
    target = tmp_path / "v.hdf5"
    export = dp.datasets.export_pdebench
    export(folder, target, virtual=True)
    # A shard replaced by a same-named file of another dataset is caught ...
    shard = "data/train/burgers_00001.hdf5"
    with h5py.File(folder / shard, "r+") as f:
        f.attrs["diffphys_config_hash"] = "another-dataset"
    with pytest.raises(ValueError, match="burgers_00001.hdf5 belongs to another"):
        dp.datasets.describe(target)
    # ... and so is a deleted one.
    (folder / shard).unlink()
    assert_one_line_error(run_cli("info", str(target)), "burgers_00001.hdf5 is missing")


# --------------------------------------------------------------------------------
# Loading


def test_windows_match_the_files(reference):
    data = dp.datasets.open(reference, "train", n_input=3, n_output=2, stride=2)
    # 9 frames, span (3 + 2 - 1) * 2 + 1 = 9: one window per trajectory
    assert len(data) == 10 and data.windows_per_trajectory == 1
    data = dp.datasets.open(reference, "train", n_input=2, n_output=1)
    assert len(data) == 10 * 7
    arrays = _arrays(reference)
    item = data[7 * 4 + 5]  # trajectory 4 = shard 1, row 1; window start 5
    u, nu = arrays["data/train/burgers_00001.hdf5"]
    np.testing.assert_array_equal(item["input_fields"][:, 0], u[1, 5:7])
    np.testing.assert_array_equal(item["output_fields"][:, 0], u[1, 7:8])
    assert item["constant_scalars"][0] == nu[1] and int(item["trajectory"]) == 4
    config = dp.datasets.make_config("burgers", **SMALL)
    np.testing.assert_allclose(item["output_time"], [7 * config.frame_interval])
    rollout = dp.datasets.open(reference, "test", n_input=1, n_output=None)
    assert len(rollout) == 1 and rollout[0]["output_fields"].shape == (8, 1, 64)


def test_batches_shuffle_deterministically_and_cover_every_window(reference):
    data = dp.datasets.open(reference, "train", n_input=1, n_output=1)
    seen = [
        (int(t), float(x))
        for b in data.batches(16, seed=3)
        for t, x in zip(b["trajectory"], b["input_time"][:, 0], strict=True)
    ]
    assert len(seen) == len(data) == len(set(seen))
    again = [int(t) for b in data.batches(16, seed=3) for t in b["trajectory"]]
    other = [int(t) for b in data.batches(16, seed=3, epoch=1) for t in b["trajectory"]]
    assert again == [t for t, _ in seen] and other != again
    batch = next(data.batches(8, drop_last=True))
    assert batch["input_fields"].shape == (8, 1, 1, 64)
    step = jax.jit(lambda x: jnp.mean(x**2))
    assert np.isfinite(step(batch["input_fields"]))


def _read_in_worker(data, index):
    return data[index]["input_fields"]


def test_loader_works_in_spawned_worker_processes(reference):
    data = dp.datasets.open(reference, "valid", n_input=2)
    local = [data[i]["input_fields"] for i in range(3)]  # opens files in this process
    assert data._files and pickle.loads(pickle.dumps(data))._files == {}
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        remote = pool.starmap(_read_in_worker, [(data, i) for i in range(3)])
    for a, b in zip(local, remote, strict=True):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------
# Command line and bad input


def test_cli_generate_info_and_export(reference, tmp_path):
    result = run_cli("info", str(reference), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["splits"]["train"] == {"files": 4, "trajectories": 10}
    assert summary["fields"]["u"]["shape"] == ["n", 9, 64]
    result = run_cli("info", str(reference / "data/valid/burgers_00000.hdf5"))
    assert result.returncode == 0 and "valid The Well-format file" in result.stdout


def test_generate_bad_input_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "new"
    for args, message in [
        (["hat"], "Unknown scenario 'hat'"),
        (["burgers", "--source", "exact"], "no analytic solution"),
        (["burgers", "--dt", "1"], "stability limit"),
        (["burgers", "--param", "mu=1"], "no parameter 'mu'"),
        (["burgers", "--param", "nu=a:b"], "Cannot read"),
        (["burgers", "--split", "0.5,0.1"], "--split"),
        (["burgers", "--engine", "mpi"], "Unknown --engine"),
        (["burgers", "--num-samples", "0"], "--num-samples"),
    ]:
        assert_one_line_error(run_cli("generate", *args, "--out", str(out)), message)
        assert not out.exists()


def test_folders_of_other_data_are_refused(reference, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(reference, other)
    before = {p: p.read_bytes() for p in other.rglob("*") if p.is_file()}
    args = SMALL_ARGS[:-1] + ["nu=0.03"]
    assert_one_line_error(
        run_cli("generate", "burgers", "--out", str(other), *args),
        "holds another dataset (config differs: params",
    )
    assert before == {p: p.read_bytes() for p in other.rglob("*") if p.is_file()}
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    for extra in ([], ["--overwrite"]):
        assert_one_line_error(
            run_cli("generate", "burgers", "--out", str(foreign), *args, *extra),
            "holds no diffphys dataset",
        )
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    # A folder another shard task has just started (state and data folders, no
    # config yet) is joined, not refused.
    starting = tmp_path / "starting"
    (starting / ".diffphys").mkdir(parents=True)
    (starting / "data" / "train").mkdir(parents=True)
    config = dp.datasets.make_config("burgers", **SMALL)
    dp.datasets.generate(config, starting, num_shards=6, shard_index=0)
    assert len(_shard_files(starting)) == 1
    result = run_cli("generate", "burgers", "--out", str(other), *args, "--overwrite")
    assert result.returncode == 0, result.stderr
    with h5py.File(other / "data/test/burgers_00000.hdf5") as f:
        assert f["scalars/nu"][()] == np.float32(0.03)


def test_bad_files_and_folders_give_one_line_reasons(reference, tmp_path):
    shard = reference / "data/train/burgers_00000.hdf5"
    truncated = tmp_path / "truncated.hdf5"
    truncated.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    garbage = tmp_path / "garbage.hdf5"
    garbage.write_bytes(b"not hdf5 at all" * 100)
    foreign = tmp_path / "foreign.hdf5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    for path, message in [
        (truncated, "not a readable HDF5 file"),
        (garbage, "not a readable HDF5 file"),
        (foreign, "not a The Well-format file"),
        (tmp_path / "absent", "no such file or folder"),
    ]:
        assert_one_line_error(run_cli("info", str(path)), message)
    broken = tmp_path / "broken"
    shutil.copytree(reference, broken)
    (broken / "data/train/burgers_00002.hdf5").unlink()
    assert_one_line_error(run_cli("info", str(broken)), "burgers_00002.hdf5 is missing")
    assert_one_line_error(
        run_cli("export", str(broken), "--out", str(tmp_path / "x.hdf5")), "missing"
    )
    assert not (tmp_path / "x.hdf5").exists()
    assert_one_line_error(run_cli("join", str(broken)), "1 missing")
    # A shard corrupted in place, its size kept: `info` checks every checksum
    # unless told --fast, and the reader names the NaN's shard and trajectory, for
    # training and evaluation as well (before anything compiles).
    corrupt = tmp_path / "corrupt"
    shutil.copytree(reference, corrupt)
    for shard in ["train/burgers_00003", "test/burgers_00000"]:
        target = corrupt / f"data/{shard}.hdf5"
        size = target.stat().st_size
        with h5py.File(target, "r+") as f:
            f["t0_fields/u"][0, 5, 7] = np.nan
        assert target.stat().st_size == size
    assert_one_line_error(run_cli("info", str(corrupt)), "does not match its checksum")
    assert run_cli("info", str(corrupt), "--fast").returncode == 0
    with pytest.raises(
        ValueError, match=r"00003.hdf5: trajectory 9 \(row 0\) holds NaN"
    ):
        dp.datasets.open(corrupt, "train", n_input=1, n_output=None)[9]
    assert_one_line_error(
        run_cli("train", "--data", corrupt, "--out", tmp_path / "run", "--quiet"),
        "burgers_00003.hdf5: trajectory 9 (row 0) holds NaN",
    )
    with pytest.raises(ValueError, match=r"test/burgers_00000.hdf5: trajectory 11"):
        dp.evaluation.evaluate("solver:burgers", corrupt)
    assert_one_line_error(
        run_cli("export", str(reference), "--out", str(tmp_path / "x.h5")),
        "names ending in .hdf5",
    )


def test_cli_lists_every_scenario_with_its_defaults_and_their_source():
    result = run_cli("scenarios", "--json")
    assert result.returncode == 0, result.stderr
    listed = {s["name"]: s for s in json.loads(result.stdout)}
    assert set(listed) == set(dp.datasets.list_scenarios())
    burgers = listed["burgers"]
    assert burgers["parameters"]["nu"]["default"] == "0.01"
    assert burgers["defaults"]["num_points"] == 1024
    assert "PDEBench" in burgers["defaults_from"]
    assert all(s["defaults_from"] != "not stated" for s in listed.values())
    text = run_cli("scenarios").stdout
    # Descriptions print as written (rich would eat "[u >= u*]" as markup).
    assert "k = 1[u >= u*]" in text and all(f"{n} (" in text for n in listed)


_PLUGIN = """
import dataclasses

import diffphys as dp

dp.datasets.register_scenario(
    dataclasses.replace(dp.datasets.get_scenario("heat"), name="my-heat"),
    replace=True,
)
"""


def _forget(name, module):
    """Unregister scenario `name` and unload `module`, as a fresh process is."""
    from diffphys.datasets import _scenarios

    _scenarios._REGISTRY.pop(name, None)
    _scenarios._MODULES.pop(name, None)
    _scenarios._entry_points_loaded = False
    sys.modules.pop(module, None)


def test_scenarios_of_users_reach_the_command_line(tmp_path, monkeypatch):
    (tmp_path / "my_heat_plugin.py").write_text(_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "ds"
    args = ["generate", "my-heat", "--out", out, "--source", "exact", "--quiet"]
    args += ["--num-samples", "4", "--num-points", "16", "--num-steps", "3"]
    try:
        assert_one_line_error(run_cli(*args), "--plugin MODULE")
        result = run_cli("--plugin", "my_heat_plugin", *args)
        assert result.returncode == 0, result.stderr
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["scenario_module"] == "my_heat_plugin"
        # A later command (a fresh process) imports the module the dataset names.
        _forget("my-heat", "my_heat_plugin")
        result = run_cli("info", out, "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["dataset_name"] == "my-heat"
        # An installed package's entry point in the group diffphys.scenarios.
        _forget("my-heat", "my_heat_plugin")
        info = tmp_path / "my_heat_pkg-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-heat-pkg\n")
        (info / "entry_points.txt").write_text(
            "[diffphys.scenarios]\nmy-heat = my_heat_plugin\n"
        )
        assert dp.datasets.get_scenario("my-heat").name == "my-heat"
        # The recorded module gone: the error says which module to install.
        shutil.rmtree(info)
        (tmp_path / "my_heat_plugin.py").unlink()
        _forget("my-heat", "my_heat_plugin")
        assert_one_line_error(
            run_cli("info", out), "Cannot import the scenario module 'my_heat_plugin'"
        )
    finally:
        _forget("my-heat", "my_heat_plugin")


def test_a_blow_up_names_the_trajectory_and_leaves_no_visible_file(tmp_path):
    import dataclasses

    scenario = dataclasses.replace(
        dp.datasets.get_scenario("burgers"),
        name="test-explodes",
        make_stepper=lambda L, N, dt, *, nu: lambda u: u * 1e30,
    )
    dp.datasets.register_scenario(scenario, replace=True)
    config = dp.datasets.make_config(
        "test-explodes", num_samples=4, num_points=32, num_steps=3
    )
    with pytest.raises(ValueError, match="Trajectory 0 blew up.*lower `dt`"):
        dp.datasets.generate(config, tmp_path / "ds")
    assert _shard_files(tmp_path / "ds") == []
    with pytest.raises(ValueError, match="already registered"):
        dp.datasets.register_scenario(scenario)


def test_the_wells_own_loader_reads_our_files(reference):
    """The Well's torch `WellDataset` (not installed by CI: it needs torch) windows
    our files, applies z-score normalisation from our stats.yaml, and returns the
    same values as h5py."""
    pytest.importorskip("the_well")
    from the_well.data import WellDataset
    from the_well.data.normalization import ZScoreNormalization

    data = WellDataset(
        path=str(reference),
        well_split_name="train",
        n_steps_input=2,
        n_steps_output=1,
        use_normalization=True,
        normalization_type=ZScoreNormalization,
    )
    assert len(data) == 10 * 7
    raw = WellDataset(
        path=str(reference), well_split_name="train", n_steps_input=2, n_steps_output=1
    )
    item = raw[7 * 4 + 5]  # trajectory 4 = shard 1, row 1; window start 5
    u, nu = _arrays(reference)["data/train/burgers_00001.hdf5"]
    np.testing.assert_array_equal(item["input_fields"].numpy()[..., 0], u[1, 5:7])
    assert item["constant_scalars"].numpy()[0] == nu[1]
    assert item["boundary_conditions"].numpy().tolist() == [[2.0, 2.0]]  # periodic
    stats = yaml.safe_load((reference / "stats.yaml").read_text())
    normalised = data[7 * 4 + 5]["input_fields"].numpy()[..., 0]
    expected = (u[1, 5:7] - stats["mean"]["u"]) / stats["std"]["u"]
    np.testing.assert_allclose(normalised, expected, rtol=1e-5, atol=1e-5)
