import contextlib
import functools
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import yaml

from .._progress import progress_bar
from . import _stats
from ._config import GenerationConfig, Shard, SPLITS
from ._scenarios import rollout_from_zero
from ._well import create_shard_file


STATE = ".diffphys"  # per-dataset bookkeeping: config, shard records, temporaries
MANIFEST = "manifest.json"
STATS = "stats.yaml"
FORMAT = "diffphys.dataset/1"


# --------------------------------------------------------------------------------
# Files


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(2**24):
            digest.update(chunk)
    return digest.hexdigest()


def read_config(out: Path) -> GenerationConfig | None:
    """The config a dataset folder was generated with, or None if it holds none."""
    path = out / STATE / "config.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return GenerationConfig.from_dict(data["config"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"{path} is corrupt ({e}); remove {out} and regenerate."
        ) from e


def _record_path(out: Path, shard: Shard) -> Path:
    return out / STATE / "shards" / f"{shard.split}-{shard.filename}.json"


def _read_record(out: Path, shard: Shard) -> dict | None:
    try:
        return json.loads(_record_path(out, shard).read_text())
    except (OSError, ValueError):
        return None


def _is_complete(out: Path, shard: Shard) -> bool:
    """A shard is complete when its file is in place and matches its record's size
    (the checksum is verified by `join`)."""
    record = _read_record(out, shard)
    path = out / shard.path
    return (
        record is not None and path.is_file() and path.stat().st_size == record["bytes"]
    )


def _config_difference(old: GenerationConfig, new: GenerationConfig) -> str:
    a, b = old.to_dict(), new.to_dict()
    diffs = [f"{k} {a[k]!r} → {b[k]!r}" for k in a if a[k] != b[k]]
    return "; ".join(diffs)


def _dataset_files(out: Path, config: GenerationConfig) -> list[Path]:
    return [
        out / STATE,
        out / "data",
        out / MANIFEST,
        out / STATS,
        out / f"{config.scenario}.yaml",
    ]


def prepare_folder(out: Path, config: GenerationConfig, *, overwrite: bool) -> bool:
    """Make `out` ready for `config`; returns whether it resumes an earlier run.

    An empty or missing folder is started; one holding the same config is resumed;
    one holding another config is refused unless `overwrite` (which removes that
    dataset's own files only); one holding anything else is always refused.
    """
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; choose a folder.")
    old = read_config(out) if out.exists() else None
    if old is not None and old.hash != config.hash:
        if not overwrite:
            raise ValueError(
                f"{out} holds another dataset (config differs: "
                f"{_config_difference(old, config)}); pass --overwrite to replace it "
                "or choose another --out."
            )
        for path in _dataset_files(out, old):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        old = None
    # Only the state and data folders (another shard task setting up the same
    # dataset a moment earlier) may be there already; anything else is not ours.
    if old is None and out.exists():
        if any(p.name not in (STATE, "data") for p in out.iterdir()):
            raise ValueError(
                f"{out} is not empty and holds no diffphys dataset; refusing to write "
                "into it (nothing was changed). Choose a new or empty --out."
            )
    for sub in ("shards", "tmp"):
        (out / STATE / sub).mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        (out / "data" / split).mkdir(parents=True, exist_ok=True)
    if old is None:
        from .. import __version__

        text = json.dumps(
            {"config": config.to_dict(), "hash": config.hash, "diffphys": __version__},
            indent=1,
        )
        _atomic_write(out / STATE / "config.json", text)
        written = read_config(out)
        if written is None or written.hash != config.hash:
            raise ValueError(
                f"Another process is writing a different dataset into {out}; give "
                "each config its own --out."
            )
    return old is not None


# --------------------------------------------------------------------------------
# Computing trajectories


@functools.cache
def _batch_function(config: GenerationConfig) -> Callable:
    sc = config.scenario_obj
    samplers = {name: sc.sampler(name, spec) for name, spec in config.params}
    L, N, dt = config.domain_extent, config.num_points, config.dt

    def one(index):
        dtype = jnp.dtype(config.precision)
        key = jr.fold_in(jr.key(config.seed), index)
        k_ic, k_params = jr.split(key)
        params = {
            name: samplers[name](jr.fold_in(k_params, i)).astype(dtype)
            for i, name in enumerate(sorted(samplers))
        }
        x = jnp.asarray(sc.coordinates(N, L), dtype)
        if config.source == "exact":
            times = jnp.arange(config.num_frames, dtype=dtype) * config.frame_interval
            traj = jax.vmap(lambda t: sc.exact(x, t, **params))(times).astype(dtype)
        else:
            if sc.initial_condition is None:
                u0 = sc.exact(x, jnp.zeros((), dtype), **params)
            else:
                u0 = sc.initial_condition(N, key=k_ic)
            stepper = sc.make_stepper(L, N, dt, **params)
            traj = rollout_from_zero(
                stepper,
                jnp.asarray(u0, dtype),
                config.num_steps,
                save_every=config.save_every,
            )
        params["_finite"] = jnp.all(jnp.isfinite(traj))
        fields, moments = {}, {}
        for field in sc.fields:
            data = traj[:, jnp.asarray(field.channels)]
            if field.tensor_order == 0:
                data = data[:, 0]
            else:
                data = jnp.moveaxis(data, 1, -1)
            fields[field.name] = data
            moments[field.name] = _stats.moments(data, field.tensor_order)
        return fields, params, moments

    return jax.jit(jax.vmap(one))


def batch_size(config: GenerationConfig) -> int:
    """Trajectories per vmapped batch: the whole shard unless its frames (kept twice:
    the scan's stacked output and the copy handed to the host) exceed a budget of
    a quarter of the device memory (GPU) or 512 MiB (CPU)."""
    sc = config.scenario_obj
    itemsize = 8 if config.precision == "float64" else 4
    per_trajectory = 2 * config.num_frames * sc.num_channels * itemsize
    per_trajectory *= config.num_points**sc.num_spatial_dims
    return max(1, min(config.shard_size, memory_budget() // per_trajectory))


def memory_budget() -> int:
    """Bytes a batch may take: a quarter of the device memory where JAX reports it
    (GPU), 512 MiB otherwise (CPU)."""
    stats = jax.devices()[0].memory_stats() or {}
    return stats["bytes_limit"] // 4 if "bytes_limit" in stats else 512 * 2**20


def batch_plan(config: GenerationConfig, start: int, stop: int) -> tuple[int, list]:
    """The batch size and first indices that cut `start..stop` into equal batches of
    at most `batch_size(config)` trajectories (the last one padded)."""
    most = batch_size(config)
    size = -(-(stop - start) // -(-(stop - start) // most))
    return size, list(range(start, stop, size))


def compute_batches(config: GenerationConfig, start: int, stop: int) -> Iterable:
    """Yield `(offset, fields, params, moments)` host batches for trajectories
    `start..stop`: fields `(B, T, *space[, D])`, per-trajectory parameters and
    per-trajectory field moments.

    The range is cut into equal batches of at most `batch_size(config)` (the last
    padded, its padding dropped), and the next batch is dispatched before the
    current one is fetched, so the device computes while the host writes.
    """
    size, offsets = batch_plan(config, start, stop)
    fn = _batch_function(config)

    def dispatch(first):
        indices = np.minimum(np.arange(first, first + size), stop - 1)
        return fn(jnp.asarray(indices))

    pending = dispatch(offsets[0]) if offsets else None
    for i, first in enumerate(offsets):
        current = pending
        pending = dispatch(offsets[i + 1]) if i + 1 < len(offsets) else None
        count = min(size, stop - first)
        fields, params, moments = jax.tree.map(
            lambda v, n=count: v[:n], jax.device_get(current)
        )
        finite = params.pop("_finite")
        if not finite.all():
            bad = int(np.argmin(finite))
            drawn = {k: float(v[bad]) for k, v in params.items()}
            raise ValueError(
                f"Trajectory {first + bad} blew up (NaN or inf) with parameters "
                f"{drawn} at dt = {config.dt:.4g}; lower --dt (raise --save-every) "
                "or narrow the --param ranges. Complete shards are kept."
            )
        yield first - start, fields, params, moments


def write_shard(
    config: GenerationConfig,
    shard: Shard,
    out: Path,
    advance: Callable[[int], None] | None = None,
) -> dict:
    """Compute `shard`, write it under a temporary name, record its checksum, then
    rename it into place. Returns its record. A pure function of (config, shard)."""
    out = Path(out)
    sc = config.scenario_obj
    tmp = out / STATE / "tmp" / f"{shard.split}-{shard.filename}"
    tmp.unlink(missing_ok=True)
    space = config.num_points**sc.num_spatial_dims
    stats = {f.name: _stats.RunningStats(config.num_frames, space) for f in sc.fields}
    dtype = np.dtype(config.precision)
    with config.numerics(), create_shard_file(tmp, config, shard, dtype=dtype) as f:
        fields = {
            fld.name: f[f"t{fld.tensor_order}_fields/{fld.name}"] for fld in sc.fields
        }
        varying = {
            n: f["scalars"][n] for n, _ in config.params if f["scalars"][n].shape
        }
        fixed = {
            n: f["scalars"][n] for n, _ in config.params if not f["scalars"][n].shape
        }
        batches = compute_batches(config, shard.start, shard.stop)
        for offset, batch, params, moments in batches:
            window = slice(offset, offset + len(next(iter(batch.values()))))
            for name, data in batch.items():
                fields[name][window] = data
                stats[name].update(moments[name])
            for name, data in params.items():
                if name in varying:
                    varying[name][window] = data
                elif offset == 0:
                    fixed[name][()] = data[0]
            if advance is not None:
                advance(window.stop - window.start)
    record = {
        "path": shard.path,
        "split": shard.split,
        "samples": [shard.start, shard.stop],
        "bytes": tmp.stat().st_size,
        "sha256": sha256(tmp),
        "stats": {name: s.to_record() for name, s in stats.items()},
    }
    _atomic_write(_record_path(out, shard), json.dumps(record))
    os.replace(tmp, out / shard.path)
    return record


# --------------------------------------------------------------------------------
# Engines


@contextlib.contextmanager
def _tracker(enabled: bool | None, total: int, done: int):
    """A rich progress bar of trajectories with their rate; `advance(n)` moves it.
    Off when `enabled` is False, or when None and stderr is no TTY or CI is set."""
    import time

    progress = progress_bar(
        "generating", "trajectories", "{task.fields[rate]}", enabled=enabled
    )
    start, fresh = time.perf_counter(), [0]
    with progress:
        task = progress.add_task("", total=total, completed=done, rate="")

        def advance(n):
            fresh[0] += n
            rate = fresh[0] / max(time.perf_counter() - start, 1e-9)
            progress.update(task, advance=n, rate=f"{rate:.1f}/s")

        yield advance


def _ray_task(config: dict, shard: dict, out: str) -> dict:
    return write_shard(GenerationConfig.from_dict(config), Shard(**shard), Path(out))


def _run_ray(config, shards, out, advance, *, address=None, workers=None):
    try:
        import ray
    except ImportError:
        raise ValueError(
            "--engine ray needs Ray: pip install 'diffphys[ray]'."
        ) from None
    import dataclasses

    started = not ray.is_initialized()
    if started:
        env = {"env_vars": {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}}
        options = {"num_cpus": workers} if address is None and workers else {}
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env=env,
            **options,
        )
    try:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=2)(_ray_task)
        pending = {
            task.remote(config.to_dict(), dataclasses.asdict(s), str(out.resolve())): s
            for s in shards
        }
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            shard = pending.pop(done[0])
            ray.get(done[0])
            advance(shard.size)
    finally:
        if started:
            ray.shutdown()


ENGINES = ("local", "ray")


def generate(
    config: GenerationConfig,
    out: str | os.PathLike,
    *,
    engine: str = "local",
    overwrite: bool = False,
    num_shards: int = 1,
    shard_index: int = 0,
    ray_address: str | None = None,
    workers: int | None = None,
    progress: bool | None = None,
) -> Path:
    """Generate the dataset `config` into the folder `out` (The Well layout).

    Resumes an interrupted run of the same config (complete shards are kept). With
    `num_shards = n > 1` this process writes only the shards `j ≡ shard_index (mod
    n)` (a SLURM array task); run `join(out)` once all are done. Otherwise the
    folder is finished here: yaml, stats and manifest are written.
    """
    out = Path(out)
    if engine not in ENGINES:
        raise ValueError(f"Unknown --engine {engine!r}; choose from {ENGINES}.")
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(
            f"Need 0 <= --shard-index < --num-shards, got {shard_index} and "
            f"{num_shards}."
        )
    prepare_folder(out, config, overwrite=overwrite)
    shards = config.shards()
    mine = [s for j, s in enumerate(shards) if j % num_shards == shard_index]
    todo = [s for s in mine if not _is_complete(out, s)]
    done = sum(s.size for s in mine) - sum(s.size for s in todo)
    with _tracker(progress, sum(s.size for s in mine), done) as advance:
        if engine == "local":
            for shard in todo:
                write_shard(config, shard, out, advance)
        elif todo:  # a finished folder needs no cluster
            _run_ray(config, todo, out, advance, address=ray_address, workers=workers)
    if num_shards == 1:
        join(out)
    return out


# --------------------------------------------------------------------------------
# Joining and metadata


def join(out: str | os.PathLike, *, verify: bool = True) -> dict:
    """Check that every shard of the dataset in `out` is in place (and, with
    `verify`, matches its checksum), then write `<name>.yaml`, `stats.yaml` and
    `manifest.json`. Returns the manifest. Refuses, naming what is missing, if a
    shard is absent or altered."""
    out = Path(out)
    config = read_config(out)
    if config is None:
        raise ValueError(f"{out} holds no diffphys dataset (no {STATE}/config.json).")
    shards = config.shards()
    records, missing, altered = [], [], []
    for shard in shards:
        record = _read_record(out, shard)
        path = out / shard.path
        if record is None or not path.is_file():
            missing.append(shard.path)
        elif path.stat().st_size != record["bytes"] or (
            verify and sha256(path) != record["sha256"]
        ):
            altered.append(shard.path)
        else:
            records.append(record)
    if missing or altered:
        what = []
        if missing:
            what.append(f"{len(missing)} missing (first: {missing[0]})")
        if altered:
            what.append(f"{len(altered)} altered since written (first: {altered[0]})")
        raise ValueError(
            f"{out}: {len(missing) + len(altered)} of {len(shards)} shards are not "
            f"complete: {'; '.join(what)}. Re-run the generate command (the same "
            "--num-shards/--shard-index) to write them, then join."
        )
    sc = config.scenario_obj
    manifest = {
        "format": FORMAT,
        "dataset_name": sc.name,
        "config": config.to_dict(),
        "config_hash": config.hash,
        "diffphys_version": json.loads((out / STATE / "config.json").read_text())[
            "diffphys"
        ],
        "shards": [
            {k: r[k] for k in ("path", "split", "samples", "bytes", "sha256")}
            for r in records
        ],
    }
    _atomic_write(
        out / f"{sc.name}.yaml", yaml.safe_dump(_metadata(config), sort_keys=False)
    )
    _atomic_write(
        out / STATS, yaml.safe_dump(_statistics(config, records), sort_keys=False)
    )
    _atomic_write(out / MANIFEST, json.dumps(manifest, indent=1))
    return manifest


def _metadata(config: GenerationConfig) -> dict:
    """The Well's `<name>.yaml` (the fields of its `WellMetadata`)."""
    sc = config.scenario_obj
    d = sc.num_spatial_dims
    names = {0: [], 1: [], 2: []}
    for f in sc.fields:
        if f.tensor_order == 0:
            names[0].append(f.name)
        else:
            names[1].extend(f"{f.name}_{axis}" for axis in "xyz"[:d])
    shards = config.shards()
    return {
        "dataset_name": sc.name,
        "n_spatial_dims": d,
        "spatial_resolution": [config.num_points] * d,
        "scalar_names": [],
        "constant_scalar_names": [n for n, _ in config.params],
        "field_names": names,
        "constant_field_names": {0: [], 1: [], 2: []},
        "boundary_condition_types": [sc.boundary.upper()] * d,
        "n_files": len(shards),
        "n_trajectories_per_file": [s.size for s in shards],
        "n_steps_per_trajectory": [config.num_frames] * len(shards),
        "grid_type": "cartesian",
    }


def _statistics(config: GenerationConfig, records: list[dict]) -> dict:
    """The Well's `stats.yaml`: per-field mean/std/rms and `*_delta` of one-frame
    differences, over the train split (what a normaliser may see)."""
    sc = config.scenario_obj
    out = {
        k: {} for k in ("mean", "std", "rms", "mean_delta", "std_delta", "rms_delta")
    }
    for field in sc.fields:
        for part, suffix in (("value", ""), ("delta", "_delta")):
            total = None
            for r in records:
                if r["split"] == "train":
                    total = _stats.combine(
                        total, _stats.from_record(r["stats"][field.name][part])
                    )
            if total is None:
                continue
            for k, v in _stats.summarise(total, field.tensor_order).items():
                out[k + suffix][field.name] = v
    return out
