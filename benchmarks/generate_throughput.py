"""Throughput of the full `generate` path (solver, HDF5 shards, statistics,
checksums, manifest) against its anchor, the bare vmapped solver rollout of the
same trajectories, measured in the same run.

Scenario `burgers` (pseudo-spectral ETDRK2, PDEBench sine-sum data, ν = 0.01),
N = 1024, 256 trajectories × 200 saved frames (+ the initial one), float32,
dt from the stability limit (21 solver steps per saved frame), one split. The bare
solver runs the identical jitted vmapped batches (same batch size) and blocks on
the device result, writing nothing. Both are timed after compilation (the
compiled function is shared). Prints one JSON line: trajectories/s and MB/s of
each and the ratio generate / bare (goal >= 0.9: I/O and bookkeeping are not
the bottleneck).
"""

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp

import diffphys as dp
from diffphys.datasets import _compute


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=256)
    parser.add_argument("--num-points", type=int, default=1024)
    parser.add_argument("--num-steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    opts = parser.parse_args()
    config = dp.datasets.make_config(
        "burgers",
        num_samples=opts.num_samples,
        num_points=opts.num_points,
        num_steps=opts.num_steps,
        split="1,0,0",
    )
    fn = _compute.batch_function(config)
    shards = config.shards()
    plans = [_compute.batch_plan(config, s.start, s.stop) for s in shards]

    def bare():
        with config.numerics():
            for size, offsets in plans:
                for first in offsets:
                    jax.block_until_ready(fn(jnp.arange(first, first + size)))

    root = Path(tempfile.mkdtemp(prefix="diffphys-bench-"))

    def full(i):
        out = root / f"run{i}"
        dp.datasets.generate(config, out, progress=False)
        return out

    try:
        bare()  # compile every batch shape
        shutil.rmtree(full(-1))
        times = {"bare": [], "generate": []}
        for i in range(opts.repeats):
            start = time.perf_counter()
            bare()
            times["bare"].append(time.perf_counter() - start)
            start = time.perf_counter()
            out = full(i)
            times["generate"].append(time.perf_counter() - start)
            written = sum(p.stat().st_size for p in out.glob("data/*/*.hdf5"))
            shutil.rmtree(out)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    best = {k: min(v) for k, v in times.items()}
    payload = config.num_samples * config.num_frames * config.num_points * 4
    result = {
        "benchmark": "generate_throughput",
        "device": jax.devices()[0].device_kind,
        "platform": platform.machine(),
        "num_samples": config.num_samples,
        "num_points": config.num_points,
        "saved_frames": config.num_frames,
        "solver_steps_per_frame": config.save_every,
        "batch_size": plans[0][0],
        "shards": len(shards),
        "bytes_written": written,
        "seconds": {k: round(v, 3) for k, v in best.items()},
        "trajectories_per_s": {
            k: round(config.num_samples / v, 2) for k, v in best.items()
        },
        "MB_per_s": {k: round(payload / v / 1e6, 2) for k, v in best.items()},
        "ratio_generate_over_bare": round(best["bare"] / best["generate"], 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
