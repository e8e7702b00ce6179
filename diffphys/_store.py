"""The one home of what every area writes to disk: atomic writes (text, JSON,
pytrees), checksums, and the claim on an output folder (whose files are ours, what
may be resumed, what `overwrite=True` may replace). Datasets, training runs and
evaluation reports all go through it, so a crash never leaves a half-written file
in place and nothing of the user's is ever removed."""

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import equinox as eqx


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to a temporary name beside `path`, then rename it into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, data) -> None:
    atomic_write(path, json.dumps(data, indent=1) + "\n")


def serialise(path: Path, tree) -> None:
    """`eqx.tree_serialise_leaves`, atomically."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    eqx.tree_serialise_leaves(tmp, tree)
    os.replace(tmp, path)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(2**24):
            digest.update(chunk)
    return digest.hexdigest()


def claim_folder(
    out: Path,
    *,
    kind: str,
    compare: Callable[[Path], str | None],
    owned: Callable[[], Iterable[Path]],
    overwrite: bool,
    tolerated: Iterable[str] = (),
) -> bool:
    """Make `out` ready to hold a `kind` ("dataset", "run", "report"); returns True
    when it already holds this very one (resume).

    - `compare(out)`: `None` when `out` holds no `kind` of ours, `""` when it holds
        this one, otherwise a few words on how the one it holds differs.
    - `owned()`: the files and folders of the `kind` it holds, removed (and nothing
        else) when `overwrite` replaces it.
    - `tolerated`: names that may sit in a folder holding no `kind` yet (the
        folders another process setting up the same one has just made).

    A folder holding anything else is refused and left as it was.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"`out={out}` is a file; choose a folder.")
    tolerated = set(tolerated)
    if out.is_dir() and any(out.iterdir()):
        difference = compare(out)
        if difference is None:
            if any(p.name not in tolerated for p in out.iterdir()):
                raise ValueError(
                    f"{out} is not empty and holds no diffphys {kind} (it is not a "
                    f"diffphys {kind} folder); choose a new or empty `out` (nothing "
                    "was changed)."
                )
        elif difference == "":
            return True
        elif not overwrite:
            raise ValueError(
                f"{out} holds another {kind} ({difference}); pass `overwrite=True` "
                "to replace it, or choose another `out`."
            )
        else:
            for path in owned():
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return False


def truncate_log(path: Path, step: int) -> None:
    """Drop the lines of a JSONL log written after `step` (a resumed run writes
    them again)."""
    path = Path(path)
    if not path.is_file():
        return
    kept = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line).get("step", 0) <= step
    ]
    atomic_write(path, "".join(line + "\n" for line in kept))
