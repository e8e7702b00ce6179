"""Finishing a dataset folder: every shard checked against its record, then The
Well's `<name>.yaml` and `stats.yaml` and our manifest written."""

import json
import os
from pathlib import Path

import yaml

from .._store import atomic_write, sha256
from . import _stats
from ._config import GenerationConfig
from ._folder import FORMAT, MANIFEST, read_config, read_record, STATE, STATS
from ._scenarios import scenario_module


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
        record = read_record(out, shard)
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
            "`num_shards`/`shard_index`) to write them, then join."
        )
    sc = config.scenario_obj
    manifest = {
        "format": FORMAT,
        "dataset_name": sc.name,
        "config": config.to_dict(),
        "config_hash": config.hash,
        "scenario_module": scenario_module(config.scenario),
        "diffphys_version": json.loads((out / STATE / "config.json").read_text())[
            "diffphys"
        ],
        "shards": [
            {k: r[k] for k in ("path", "split", "samples", "bytes", "sha256")}
            for r in records
        ],
    }
    atomic_write(
        out / f"{sc.name}.yaml", yaml.safe_dump(_metadata(config), sort_keys=False)
    )
    atomic_write(
        out / STATS, yaml.safe_dump(_statistics(config, records), sort_keys=False)
    )
    atomic_write(out / MANIFEST, json.dumps(manifest, indent=1))
    return manifest


def _metadata(config: GenerationConfig) -> dict:
    """The Well's `<name>.yaml` (the fields of its `WellMetadata`)."""
    sc = config.scenario_obj
    names = {0: [], 1: [], 2: []}
    for f in sc.fields:
        names[f.tensor_order].extend(sc.channel_names[c] for c in f.channels)
    constant = {0: [], 1: [], 2: []}
    for f in sc.constant_fields:
        constant[f.tensor_order].extend(
            sc.constant_channel_names[c] for c in f.channels
        )
    shards = config.shards()
    return {
        "dataset_name": sc.name,
        "n_spatial_dims": sc.num_spatial_dims,
        "spatial_resolution": list(sc.space_shape(config.num_points)),
        "scalar_names": [],
        "constant_scalar_names": [n for n, _ in config.params],
        "field_names": names,
        "constant_field_names": constant,
        # The Well lists the dataset's distinct types, not one per axis (its
        # periodic 2D `active_matter.yaml`: `[PERIODIC]`).
        "boundary_condition_types": [sc.boundary.upper()]
        if sc.entities is None
        else [],
        "n_files": len(shards),
        "n_trajectories_per_file": [s.size for s in shards],
        "n_steps_per_trajectory": [config.num_frames] * len(shards),
        "grid_type": sc.grid_type,
    }


def _statistics(config: GenerationConfig, records: list[dict]) -> dict:
    """The Well's `stats.yaml`: per-field mean/std/rms and `*_delta` of one-frame
    differences, over the train split (what a normaliser may see)."""
    sc = config.scenario_obj
    out = {
        k: {} for k in ("mean", "std", "rms", "mean_delta", "std_delta", "rms_delta")
    }
    for field in sc.fields + sc.constant_fields:
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
