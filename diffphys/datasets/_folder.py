import json
from pathlib import Path

from ._config import GenerationConfig
from ._generate import _is_complete, MANIFEST, read_config, sha256


def load_manifest(folder, *, verify: bool = False) -> tuple[GenerationConfig, dict]:
    """Read a finished dataset folder's manifest and check that every shard it lists
    is in place with its recorded size (and, with `verify`, checksum). Raises a
    `ValueError` with a one-line reason otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder.")
    path = folder / MANIFEST
    if not path.is_file():
        config = read_config(folder)
        if config is None:
            raise ValueError(f"{folder} is not a diffphys dataset (no {MANIFEST}).")
        shards = config.shards()
        done = sum(_is_complete(folder, s) for s in shards)
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
    for shard in shards:
        file = folder / shard["path"]
        if not file.is_file():
            raise ValueError(f"{folder}: shard {shard['path']} is missing.")
        if file.stat().st_size != shard["bytes"]:
            raise ValueError(
                f"{folder}: shard {shard['path']} has {file.stat().st_size} bytes, "
                f"the manifest says {shard['bytes']} (truncated or replaced)."
            )
        if verify and sha256(file) != shard["sha256"]:
            raise ValueError(
                f"{folder}: shard {shard['path']} does not match its checksum "
                "(corrupt or altered)."
            )
    return config, manifest


def split_shards(manifest: dict, split: str | None) -> list[dict]:
    """The manifest's shards of `split` (all splits when None), in trajectory
    order."""
    from ._config import SPLITS

    if split is not None and split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose from {SPLITS}.")
    chosen = [s for s in manifest["shards"] if split is None or s["split"] == split]
    return sorted(chosen, key=lambda s: s["samples"][0])
