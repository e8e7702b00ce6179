"""Running a dataset's shards: in this process (`local`), as Ray tasks (`ray`), or
one slice of them per SLURM array task (`num_shards`, `shard_index`, then `join`)."""

import os
from pathlib import Path

from .._progress import tracker
from ._compute import write_shard
from ._config import GenerationConfig, Shard
from ._folder import is_complete, prepare_folder
from ._join import join


def _ray_task(config: dict, shard: dict, out: str) -> dict:
    return write_shard(GenerationConfig.from_dict(config), Shard(**shard), Path(out))


def _run_ray(config, shards, out, advance, *, address=None, workers=None):
    try:
        import ray
    except ImportError:
        raise ValueError(
            "`engine='ray'` needs Ray: pip install 'diffphys[ray]'."
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
        raise ValueError(f"Unknown `engine` {engine!r}; choose from {ENGINES}.")
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(
            f"Need 0 <= `shard_index` < `num_shards`, got {shard_index} and "
            f"{num_shards}."
        )
    prepare_folder(out, config, overwrite=overwrite)
    shards = config.shards()
    mine = [s for j, s in enumerate(shards) if j % num_shards == shard_index]
    todo = [s for s in mine if not is_complete(out, s)]
    done = sum(s.size for s in mine) - sum(s.size for s in todo)
    total = sum(s.size for s in mine)
    with tracker("generating", "trajectories", total, done, progress) as advance:
        if engine == "local":
            for shard in todo:
                write_shard(config, shard, out, advance)
        elif todo:  # a finished folder needs no cluster
            _run_ray(config, todo, out, advance, address=ray_address, workers=workers)
    if num_shards == 1:
        join(out)
    return out
