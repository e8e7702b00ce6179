"""The bookkeeping of a dataset folder: its config (the folder's marker), the
records of complete shards, the manifest, and the claim on the folder."""

import json
from pathlib import Path

from .._progress import progress_bar
from .._store import atomic_write, claim_folder, sha256
from ._config import GenerationConfig, Shard, SPLITS
from ._scenarios import import_recorded, scenario_module


STATE = ".diffphys"  # per-dataset bookkeeping: config, shard records, temporaries
MANIFEST = "manifest.json"
STATS = "stats.yaml"
FORMAT = "diffphys.dataset/1"


def read_config(out: Path) -> GenerationConfig | None:
    """The config a dataset folder was generated with, or None if it holds none."""
    path = out / STATE / "config.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        config = GenerationConfig.from_dict(data["config"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"{path} is corrupt ({e}); remove {out} and regenerate."
        ) from e
    import_recorded(config.scenario, data.get("scenario_module"))
    return config


def record_path(out: Path, shard: Shard) -> Path:
    return out / STATE / "shards" / f"{shard.split}-{shard.filename}.json"


def read_record(out: Path, shard: Shard) -> dict | None:
    try:
        return json.loads(record_path(out, shard).read_text())
    except (OSError, ValueError):
        return None


def is_complete(out: Path, shard: Shard) -> bool:
    """A shard is complete when its file is in place and matches its record's size
    (the checksum is verified by `join`)."""
    record = read_record(out, shard)
    path = out / shard.path
    return (
        record is not None and path.is_file() and path.stat().st_size == record["bytes"]
    )


def resume_state(out, config: GenerationConfig) -> dict | None:
    """What running `config` into `out` would resume: `complete` and `total` shards,
    and `partial` shard files an interrupted run left half-written (they are
    computed again). None when `out` holds no dataset of this config yet."""
    out = Path(out)
    try:
        old = read_config(out)
    except ValueError:
        return None
    if old is None or old.hash != config.hash:
        return None
    shards = config.shards()
    tmp = out / STATE / "tmp"
    return {
        "complete": sum(is_complete(out, s) for s in shards),
        "total": len(shards),
        "partial": len(list(tmp.glob("*.hdf5"))) if tmp.is_dir() else 0,
    }


def _config_difference(old: GenerationConfig, new: GenerationConfig) -> str:
    a, b = old.to_dict(), new.to_dict()
    diffs = [f"{k} {a[k]!r} → {b[k]!r}" for k in a if a[k] != b[k]]
    return "; ".join(diffs)


def prepare_folder(out: Path, config: GenerationConfig, *, overwrite: bool) -> bool:
    """Make `out` ready for `config`; returns whether it resumes an earlier run.

    An empty or missing folder is started; one holding the same config is resumed;
    one holding another config is refused unless `overwrite` (which removes that
    dataset's own files only); one holding anything else is always refused.
    """
    old = None

    def compare(folder):
        nonlocal old
        old = read_config(folder)
        if old is None:
            return None
        if old.hash == config.hash:
            return ""
        return f"config differs: {_config_difference(old, config)}"

    def owned():
        names = (STATE, "data", MANIFEST, STATS, f"{old.scenario}.yaml")
        return [out / name for name in names]

    # The state and data folders alone are another shard task setting up the same
    # dataset a moment earlier.
    resume = claim_folder(
        out,
        kind="dataset",
        compare=compare,
        owned=owned,
        overwrite=overwrite,
        tolerated=(STATE, "data"),
    )
    for sub in ("shards", "tmp"):
        (out / STATE / sub).mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        (out / "data" / split).mkdir(parents=True, exist_ok=True)
    if not resume:
        from .. import __version__

        record = {
            "config": config.to_dict(),
            "hash": config.hash,
            "diffphys": __version__,
            "scenario_module": scenario_module(config.scenario),
        }
        text = json.dumps(record, indent=1)
        atomic_write(out / STATE / "config.json", text)
        written = read_config(out)
        if written is None or written.hash != config.hash:
            raise ValueError(
                f"Another process is writing a different dataset into {out}; give "
                "each config its own `out`."
            )
    return resume


def load_manifest(
    folder, *, verify: bool = False, progress: bool | None = None
) -> tuple[GenerationConfig, dict]:
    """Read a finished dataset folder's manifest and check that every shard it lists
    is in place with its recorded size (and, with `verify`, checksum, under a
    progress bar: see `dp.datasets.generate`'s `progress`). Raises a `ValueError`
    with a one-line reason otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder.")
    path = folder / MANIFEST
    if not path.is_file():
        config = read_config(folder)
        if config is None:
            raise ValueError(f"{folder} is not a diffphys dataset (no {MANIFEST}).")
        shards = config.shards()
        done = sum(is_complete(folder, s) for s in shards)
        raise ValueError(
            f"{folder} is an unfinished dataset: {done} of {len(shards)} shards "
            "written and no manifest; finish it with the same `diffphys generate` "
            "command, or `diffphys join` once every shard task has run."
        )
    try:
        manifest = json.loads(path.read_text())
        config = GenerationConfig.from_dict(manifest["config"])
        shards = manifest["shards"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is corrupt ({e}); run `diffphys join`.") from None
    if manifest.get("config_hash") != config.hash:
        raise ValueError(f"{path}: config hash does not match its config.")
    import_recorded(config.scenario, manifest.get("scenario_module"))
    for shard in shards:
        file = folder / shard["path"]
        if not file.is_file():
            raise ValueError(f"{folder}: shard {shard['path']} is missing.")
        if file.stat().st_size != shard["bytes"]:
            raise ValueError(
                f"{folder}: shard {shard['path']} has {file.stat().st_size} bytes, "
                f"the manifest says {shard['bytes']} (truncated or replaced)."
            )
    if not verify:
        return config, manifest
    with progress_bar("checksums", enabled=progress) as bar:
        task = bar.add_task("", total=len(shards))
        for shard in shards:
            if sha256(folder / shard["path"]) != shard["sha256"]:
                raise ValueError(
                    f"{folder}: shard {shard['path']} does not match its checksum "
                    "(corrupt or altered); generate it again (delete the file and "
                    "re-run the same `diffphys generate`)."
                )
            bar.advance(task)
    return config, manifest


def split_shards(manifest: dict, split: str | None) -> list[dict]:
    """The manifest's shards of `split` (all splits when None), in trajectory
    order."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose from {SPLITS}.")
    chosen = [s for s in manifest["shards"] if split is None or s["split"] == split]
    return sorted(chosen, key=lambda s: s["samples"][0])
