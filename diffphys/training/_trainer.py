import contextlib
import functools
import json
import os
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .. import constraints, operators
from .._progress import progress_bar
from ..datasets import GenerationConfig, open as open_split
from ..datasets._folder import load_manifest
from ..datasets._generate import _atomic_write
from ..evaluation import AbstractModel, nrmse as nrmse_per_step
from ..evaluation._engine import check_compatible
from ..solvers import rollout
from ._config import (
    build_model,
    coarse_solver,
    reference_solver,
    TrainConfig,
)
from ._losses import get_loss
from ._modes import unroll


RUN_FORMAT = "diffphys-run"
CONFIG = "config.json"
CHECKPOINT = "checkpoint.eqx"
STATE = "checkpoint.json"
BEST = "best.eqx"
LOG = "log.jsonl"
SUMMARY = "summary.json"


# --------------------------------------------------------------------------------
# The model's step, shared by training, validation and evaluation


def make_step(model, train: TrainConfig, data: GenerationConfig):
    """`fn(params) -> step` with `step(u) -> (u_next, model_input)`: the trained
    model's one-frame step on `data`'s grid (for `correction`, the coarse solver
    then the network's additive correction)."""
    if train.parsed_mode.kind != "correction":
        return lambda params: lambda u: (model(u), u)
    solver = coarse_solver(train.solver, data)

    def make(params):
        coarse = solver(params)

        def step(u):
            v = coarse(u)
            return v + model(v), v

        return step

    return make


class TrainedModel(AbstractModel):
    """A trained run as an evaluation model (`dp.evaluation.evaluate` or
    `diffphys evaluate --model RUN_DIR`): the network's one-frame step, with the
    coarse solver in front for `correction` runs. It runs on any dataset of the
    same PDE, channels and frame interval (the grid may differ)."""

    model: eqx.Module
    train: TrainConfig = eqx.field(static=True)
    trained_on: GenerationConfig = eqx.field(static=True)
    name: str = eqx.field(static=True)

    def build(self, config, steps):
        a, b = self.trained_on, config
        check_compatible(self.name, a.scenario_obj, b.scenario_obj)
        if not np.isclose(a.frame_interval, b.frame_interval, rtol=1e-9):
            raise ValueError(
                f"Model {self.name!r} steps {a.frame_interval:g} in time; the "
                f"dataset's frames are {b.frame_interval:g} apart."
            )
        if a.domain_extent != b.domain_extent:
            raise ValueError(
                f"Model {self.name!r} was trained on a domain of length "
                f"{a.domain_extent:g}; the dataset's is {b.domain_extent:g}."
            )
        make = make_step(self.model, self.train, config)

        def fn(u0, params):
            step = make(params)
            return rollout(lambda u: step(u)[0], u0, steps, throw=False)

        return fn


# --------------------------------------------------------------------------------
# Data


def load_split(folder, split: str):
    """All trajectories of one split in memory: fields `(B, T, C, *N)` and
    parameters `(B, P)` (NumPy)."""
    dataset = open_split(folder, split, n_input=1, n_output=None)
    if dataset.num_trajectories == 0:
        raise ValueError(f"Split {split!r} of {folder} holds no trajectories.")
    with dataset:
        items = [dataset[i] for i in range(dataset.num_trajectories)]
    fields = np.stack(
        [np.concatenate([it["input_fields"], it["output_fields"]]) for it in items]
    )
    scalars = np.stack([it["constant_scalars"] for it in items])
    return fields, scalars, dataset.scalar_names


@functools.lru_cache(maxsize=2)  # one permutation per epoch, not per step
def window_order(num_trajectories, num_frames, horizon, *, seed, epoch):
    """The `(trajectory, start)` windows of one epoch, shuffled by `(seed, epoch)`."""
    starts = num_frames - horizon
    if starts < 1:
        raise ValueError(
            f"Windows of {horizon + 1} frames do not fit trajectories of {num_frames} "
            "frames; use a shorter horizon K or a dataset with more frames."
        )
    order = np.random.default_rng([seed, epoch]).permutation(num_trajectories * starts)
    return np.stack(np.divmod(order, starts), axis=1)


def batch_windows(fields, scalars, horizon, batch_size, seed, step):
    """Training batch number `step`: a pure function of `(seed, step)`, so a resumed
    run reads exactly the batches an uninterrupted one would."""
    num_windows = fields.shape[0] * (fields.shape[1] - horizon)
    per_epoch = num_windows // batch_size
    if per_epoch < 1:
        raise ValueError(
            f"The training split has {num_windows} windows of {horizon + 1} frames, "
            f"fewer than one batch of {batch_size}; lower --batch-size."
        )
    epoch, index = divmod(step, per_epoch)
    order = window_order(
        fields.shape[0], fields.shape[1], horizon, seed=seed, epoch=epoch
    )
    chosen = order[index * batch_size : (index + 1) * batch_size]
    offsets = chosen[:, 1:2] + np.arange(horizon + 1)
    return fields[chosen[:, :1], offsets], scalars[chosen[:, 0]]


# --------------------------------------------------------------------------------
# Run folder


def _write_json(path: Path, data) -> None:
    _atomic_write(path, json.dumps(data, indent=1) + "\n")


def _serialise(path: Path, tree) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    eqx.tree_serialise_leaves(tmp, tree)
    os.replace(tmp, path)


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


def _prepare_run(out: Path, record: dict, overwrite: bool) -> bool:
    """Create the run folder or check it holds this run. True when resuming."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder.")
    if out.is_dir() and any(out.iterdir()):
        if not (out / CONFIG).is_file():
            raise ValueError(
                f"--out {out} is a non-empty folder that is not a diffphys run; "
                "choose an empty or new folder."
            )
        old = json.loads((out / CONFIG).read_text())
        same = (
            old.get("train") == record["train"]
            and old.get("dataset", {}).get("hash") == record["dataset"]["hash"]
        )
        if same:
            return (out / STATE).is_file()
        if not overwrite:
            raise ValueError(
                f"--out {out} holds another run (different options or data); choose "
                "another folder or pass --overwrite to replace it."
            )
        for name in (CONFIG, CHECKPOINT, STATE, BEST, LOG, SUMMARY):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / CONFIG, record)
    return False


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
        raise ValueError(f"{folder} has no {file}; train it first (diffphys train).")
    with data.numerics():
        skeleton = build_model(train, data, tau=run["model"]["tau"])
        params, static = eqx.partition(skeleton, eqx.is_inexact_array)
        try:
            if which == "best":
                params = eqx.tree_deserialise_leaves(folder / file, params)
            else:
                optimiser, _ = _optimiser(train, run["resolved"]["warmup_steps"])
                params, _ = eqx.tree_deserialise_leaves(
                    folder / file, (params, optimiser.init(params))
                )
        except Exception as e:
            raise ValueError(
                f"{folder / file} does not match its run's config ({e})."
            ) from None
    return TrainedModel(
        eqx.combine(params, static), train, data, name or f"{train.model}:{folder.name}"
    )


# --------------------------------------------------------------------------------
# Training


def _optimiser(train: TrainConfig, warmup: int):
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warmup else train.learning_rate,
        peak_value=train.learning_rate,
        warmup_steps=warmup,
        decay_steps=train.steps,
        end_value=0.01 * train.learning_rate,
    )
    chain = [optax.clip_by_global_norm(train.clip_norm)] if train.clip_norm else []
    chain.append(optax.adamw(schedule, weight_decay=train.weight_decay))
    return optax.chain(*chain), schedule


def _penalty(model, train: TrainConfig, x, key):
    if isinstance(model, constraints.MassConserving):
        model = model.model
    if train.jaws:
        return train.jaws_weight * model.penalty(
            x, key=key, num_probes=train.jaws_probes
        )
    if train.spectral_penalty > 0:
        value, _ = operators.spectral_norm_penalty(model, x, key=key)
        return train.spectral_penalty * value
    return jnp.zeros((), x.dtype)


def _tracker(enabled, total, done):
    progress = progress_bar(
        "training",
        "loss {task.fields[loss]} valid {task.fields[valid]}",
        enabled=enabled,
    )
    task = progress.add_task("", total=total, completed=done, loss="-", valid="-")
    return progress, task


def train(
    config: TrainConfig,
    data,
    out,
    *,
    overwrite: bool = False,
    until: int | None = None,
    progress: bool | None = None,
) -> dict:
    """Train `config` on the dataset folder `data`, writing the run folder `out`:

    - `config.json`: the options, the dataset's config and hash, DyMixOp's τ;
    - `checkpoint.eqx` + `checkpoint.json`: model and optimiser state at the last
      validation, with the step and the best validation so far;
    - `best.eqx`: the model with the lowest validation nRMSE (model selection on the
      validation split only; the test split is never read);
    - `log.jsonl`: one JSON object per logged step and per validation;
    - `summary.json` at the end.

    Re-running the same call on the same folder resumes from the checkpoint and
    gives exactly the result of an uninterrupted run: batches and random keys are
    pure functions of `(seed, step)`. `until=S` stops after step `S` (checkpointed),
    for jobs cut into pieces by a queue's time limit.

    Batches are sharded over all local devices (`jax.sharding`, data parallel);
    `batch_size` must be a multiple of their number. Runs in the dataset's precision.
    Returns the summary.
    """
    out = Path(out)
    data_config, _ = load_manifest(data)
    # optax's Adam mixes dtypes internally (bias correction): run it under standard
    # promotion even where the caller made promotion strict.
    with data_config.numerics(), jax.numpy_dtype_promotion("standard"):
        fields, scalars, names = load_split(data, "train")
        valid_fields, valid_scalars, _ = load_split(data, "valid")
        resolved = config.resolved(data_config.num_frames)
        tau = float(operators.structure_change_coefficient(fields, fields.ndim - 3))
        model = build_model(config, data_config, tau=tau)
        record = {
            "format": RUN_FORMAT,
            "version": 1,
            "train": config.to_dict(),
            "resolved": resolved,
            "dataset": {
                "path": str(data),
                "hash": data_config.hash,
                "config": data_config.to_dict(),
            },
            "model": {
                "tau": tau,
                "parameters": operators.count_parameters(model),
            },
        }
        resume = _prepare_run(out, record, overwrite)
        return _train_loop(
            config,
            data_config,
            model,
            out,
            resume=resume,
            resolved=resolved,
            arrays=(fields, scalars, valid_fields, valid_scalars),
            names=names,
            until=until,
            progress=progress,
        )


def _train_loop(
    config,
    data_config,
    model,
    out,
    *,
    resume,
    resolved,
    arrays,
    names,
    until,
    progress,
):
    fields, scalars, valid_fields, valid_scalars = arrays
    mode = config.parsed_mode
    horizon = mode.horizon
    devices = jax.local_devices()
    if config.batch_size % len(devices):
        raise ValueError(
            f"--batch-size {config.batch_size} is not a multiple of the "
            f"{len(devices)} local devices it is sharded over."
        )
    mesh = Mesh(np.asarray(devices), ("batch",))
    sharded = NamedSharding(mesh, PartitionSpec("batch"))
    replicated = NamedSharding(mesh, PartitionSpec())

    loss = get_loss(config.loss)
    optimiser, schedule = _optimiser(config, resolved["warmup_steps"])
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = optimiser.init(params)
    reference = reference_solver(data_config) if mode.needs_reference else None
    base_key = jr.key(config.seed)

    def window_loss(params, window, scalar, key):
        model = eqx.combine(params, static)
        p = dict(zip(names, scalar, strict=True))
        step = make_step(model, config, data_config)(p)
        value, inputs = unroll(
            mode,
            step,
            window,
            loss=loss,
            reference=None if reference is None else reference(p),
            tbptt=config.tbptt,
        )
        x = jax.lax.stop_gradient(inputs[0 if config.jaws_at == "truth" else -1])
        return value, _penalty(model, config, x, key)

    def total_loss(params, windows, scalars, key):
        keys = jr.split(key, windows.shape[0])
        values, penalties = jax.vmap(window_loss, in_axes=(None, 0, 0, 0))(
            params, windows, scalars, keys
        )
        data_loss, penalty = jnp.mean(values), jnp.mean(penalties)
        return data_loss + penalty, (data_loss, penalty)

    @jax.jit
    def train_step(params, opt_state, windows, scalars, index):
        key = jr.fold_in(base_key, index)
        (total, (data_loss, penalty)), grads = jax.value_and_grad(
            total_loss, has_aux=True
        )(params, windows, scalars, key)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        stats = {
            "loss": total,
            "data_loss": data_loss,
            "penalty": penalty,
            "grad_norm": optax.tree.norm(grads),
        }
        return params, opt_state, stats

    valid_steps = resolved["valid_steps"]
    # On the device once, only the frames a validation compares.
    valid_fields = jax.device_put(valid_fields[:, : valid_steps + 1], replicated)
    valid_scalars = jax.device_put(valid_scalars, replicated)

    @jax.jit
    def validate(params, valid_fields, valid_scalars):
        model = eqx.combine(params, static)
        step_of = make_step(model, config, data_config)

        def one(traj, scalar):
            step = step_of(dict(zip(names, scalar, strict=True)))
            pred = rollout(lambda u: step(u)[0], traj[0], valid_steps, throw=False)
            return nrmse_per_step(pred[1:], traj[1:])

        errors = jax.lax.map(lambda a: one(*a), (valid_fields, valid_scalars))
        return jnp.mean(jnp.where(jnp.isfinite(errors), errors, jnp.inf))

    state = {
        "step": 0,
        "best_valid": None,
        "best_step": None,
        "seconds": 0.0,
        "compiled_step_bytes": None,
    }
    if resume:
        state = json.loads((out / STATE).read_text())
        try:
            params, opt_state = eqx.tree_deserialise_leaves(
                out / CHECKPOINT, (params, opt_state)
            )
        except Exception as e:
            raise ValueError(
                f"{out / CHECKPOINT} cannot be read ({e}); pass --overwrite to start "
                "the run again."
            ) from None
    _truncate_log(out / LOG, state["step"])
    params = jax.device_put(params, replicated)
    opt_state = jax.device_put(opt_state, replicated)

    stop = config.steps if until is None else min(until, config.steps)
    every = resolved["validate_every"]
    log_every = max(1, min(every, config.steps // 100 or 1))
    start_time = time.perf_counter() - state["seconds"]
    compiled = None
    bar, task = _tracker(progress, config.steps, state["step"])
    with bar, open(out / LOG, "a") as log:
        for index in range(state["step"], stop):
            windows, batch_scalars = batch_windows(
                fields, scalars, horizon, config.batch_size, config.seed, index
            )
            windows = jax.device_put(windows, sharded)
            batch_scalars = jax.device_put(batch_scalars, sharded)
            if compiled is None:
                compiled = train_step.lower(
                    params, opt_state, windows, batch_scalars, np.int32(index)
                ).compile()
                state["compiled_step_bytes"] = _memory(compiled)
            params, opt_state, stats = compiled(
                params, opt_state, windows, batch_scalars, np.int32(index)
            )
            done = index + 1
            if done % log_every == 0 or done == stop:
                entry = {
                    "step": done,
                    **{k: float(v) for k, v in stats.items()},
                    "learning_rate": float(schedule(index)),
                    "seconds": round(time.perf_counter() - start_time, 3),
                }
                if not np.isfinite(entry["loss"]):
                    raise RuntimeError(
                        f"The training loss became {entry['loss']} at step {done}; "
                        "lower --lr, keep --clip-norm, or use a shorter horizon."
                    )
                log.write(json.dumps(entry) + "\n")
                bar.update(task, loss=f"{entry['loss']:.3e}")
            if done % every == 0 or done == stop:
                value = float(validate(params, valid_fields, valid_scalars))
                log.write(json.dumps({"step": done, "valid_nrmse": value}) + "\n")
                log.flush()
                bar.update(task, valid=f"{value:.3e}")
                if state["best_valid"] is None or value < state["best_valid"]:
                    state["best_valid"], state["best_step"] = value, done
                    _serialise(out / BEST, params)
                state["step"] = done
                state["seconds"] = time.perf_counter() - start_time
                _serialise(out / CHECKPOINT, (params, opt_state))
                _write_json(out / STATE, state)
            bar.update(task, completed=done)
    summary = {
        "step": state["step"],
        "finished": state["step"] == config.steps,
        "best_valid_nrmse": state["best_valid"],
        "best_step": state["best_step"],
        "seconds": round(state["seconds"], 2),
        "parameters": operators.count_parameters(params),
        "devices": len(devices),
        "compiled_step_bytes": state["compiled_step_bytes"],
    }
    if summary["finished"]:
        _write_json(out / SUMMARY, summary)
    return summary


def _memory(compiled) -> dict | None:
    """Bytes of the compiled training step as XLA reports them (temporaries are the
    activations kept for the backward pass)."""
    with contextlib.suppress(Exception):
        m = compiled.memory_analysis()
        return {
            "temp": int(m.temp_size_in_bytes),
            "arguments": int(m.argument_size_in_bytes),
            "output": int(m.output_size_in_bytes),
        }
    return None


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint (they will be written again)."""
    if not path.is_file():
        return
    kept = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line).get("step", 0) <= step
    ]
    _atomic_write(path, "".join(line + "\n" for line in kept))
