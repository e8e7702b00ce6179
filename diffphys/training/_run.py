"""The run folder of a training run: its record (`config.json`), checkpoints,
best model, log and summary; written through `diffphys._store`, so every file is
replaced atomically and a folder of someone else's is never touched."""

import json
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

from .._store import claim_folder, write_json
from ..datasets import GenerationConfig
from ._config import TrainConfig
from ._model import build_model, TrainedModel
from ._optimiser import optimiser_of


RUN_FORMAT = "diffphys-run"
CONFIG = "config.json"
CHECKPOINT = "checkpoint.eqx"
STATE = "checkpoint.json"
BEST = "best.eqx"
LOG = "log.jsonl"
SUMMARY = "summary.json"
FILES = (CONFIG, CHECKPOINT, STATE, BEST, LOG, SUMMARY)


def read_run(folder) -> dict:
    """A run folder's `config.json`, checked."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise ValueError(f"{folder} is not a diffphys training run (no {CONFIG}).")
    try:
        run = json.loads(path.read_text())
        if run.get("format") != RUN_FORMAT:
            raise ValueError("not a run file")
        run["train"] = TrainConfig.from_dict(run["train"])
        run["dataset"]["config"] = GenerationConfig.from_dict(run["dataset"]["config"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is corrupt or not a diffphys run ({e}).") from None
    return run


def prepare_run(out: Path, record: dict, overwrite: bool) -> tuple[bool, int | None]:
    """Create the run folder or check it holds this run. Returns whether it resumes
    and, when the call extends a run to more optimiser steps (its only difference),
    the run's former `num_train_steps`; the record then becomes the new one."""
    former = []

    def compare(folder):
        path = folder / CONFIG
        if not path.is_file():
            return None
        old = json.loads(path.read_text())
        old_hash = old.get("dataset", {}).get("hash")
        if old_hash != record["dataset"]["hash"]:
            return (
                f"another dataset: config hash {old_hash} → {record['dataset']['hash']}"
            )
        a, b = old.get("train", {}), record["train"]
        differ = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        if not differ:
            return ""
        steps = "num_train_steps"
        if differ == [steps] and b[steps] > a[steps]:
            former.append(a[steps])
            return ""
        return "different options: " + "; ".join(
            f"`{k}` {a.get(k)!r} → {b.get(k)!r}" for k in differ
        )

    resume = claim_folder(
        out,
        kind="run",
        compare=compare,
        owned=lambda: [out / name for name in FILES],
        overwrite=overwrite,
    )
    if not resume:
        write_json(out / CONFIG, record)
        return False, None
    if former:
        write_json(out / CONFIG, record)
        (out / SUMMARY).unlink(missing_ok=True)
    return (out / STATE).is_file(), former[0] if former else None


def load_run(folder, *, which: str = "best", name: str | None = None) -> TrainedModel:
    """The model of a run folder (`best` by validation, or `last`) as a
    `TrainedModel` for `dp.evaluation.evaluate`."""
    folder = Path(folder)
    run = read_run(folder)
    train, data = run["train"], run["dataset"]["config"]
    file = {"best": BEST, "last": CHECKPOINT}.get(which)
    if file is None:
        raise ValueError(f"`which` must be 'best' or 'last', got {which!r}.")
    if not (folder / file).is_file():
        raise ValueError(f"{folder} has no {file}; train it first (dp.training.train).")
    with data.numerics():
        skeleton = _skeleton(train, data, run["model"]["tau"])
        params, static = eqx.partition(skeleton, _is_parameter)
        try:
            if which == "best":
                params = eqx.tree_deserialise_leaves(folder / file, params)
            else:
                optimiser, _ = optimiser_of(train, run["resolved"]["warmup_steps"])
                state = eqx.filter_eval_shape(optimiser.init, params)
                params, _ = eqx.tree_deserialise_leaves(folder / file, (params, state))
        except Exception as e:
            raise ValueError(
                f"{folder / file} does not match its run's config ({e})."
            ) from None
    return TrainedModel(
        eqx.combine(params, static), train, data, name or f"{train.model}:{folder.name}"
    )


def _is_parameter(x) -> bool:
    return eqx.is_inexact_array(x) or (
        isinstance(x, jax.ShapeDtypeStruct) and jnp.issubdtype(x.dtype, jnp.inexact)
    )


def _skeleton(train: TrainConfig, data: GenerationConfig, tau: float):
    """The model to read a checkpoint into, with shapes in place of the initial
    weights: a real initialisation would compile one random draw per weight shape,
    only for the checkpoint to overwrite it. Built for real where the model holds
    non-float arrays, which a checkpoint does not store."""
    shapes = eqx.filter_eval_shape(build_model, train, data, tau=tau)
    structs = [
        x for x in jax.tree.leaves(shapes) if isinstance(x, jax.ShapeDtypeStruct)
    ]
    if all(jnp.issubdtype(x.dtype, jnp.inexact) for x in structs):
        return shapes
    return build_model(train, data, tau=tau)
