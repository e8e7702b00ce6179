"""The training loop: a jitted step over sharded batches, periodic validation by
rollout nRMSE, checkpoints with exact resume. The run folder is `_run`, the data
windows `_data`, the model and its solvers `_model`."""

import contextlib
import json
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
from .._progress import tracker
from .._store import serialise, truncate_log, write_json
from ..datasets import GenerationConfig, load_manifest
from ..evaluation import nrmse as nrmse_per_step
from ..solvers import rollout
from . import _run as run_folder
from ._config import TrainConfig
from ._data import batch_windows, load_split
from ._losses import get_loss
from ._model import build_model, make_step, reference_solver
from ._modes import unroll
from ._optimiser import optimiser_of


class TrainResult(eqx.Module):
    """What `train` returns: the trained `model` (the parameters of the last
    step; `load_run(folder)` gives the best by validation), the `summary` (as in
    `summary.json`: step, whether finished, best validation nRMSE and its step,
    seconds, parameters, devices, compiled step bytes) and the run `folder`."""

    model: eqx.Module
    summary: dict = eqx.field(static=True)
    folder: Path = eqx.field(static=True)


def train(
    config: TrainConfig,
    data,
    out,
    *,
    overwrite: bool = False,
    until: int | None = None,
    progress: bool | None = None,
) -> TrainResult:
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
    pure functions of `(seed, step)`. `until=S` stops after optimiser step `S`
    (checkpointed), for jobs cut into pieces by a queue's time limit. A call that
    differs only by a larger `num_train_steps` extends the run from its last
    checkpoint: the learning-rate schedule becomes the new run's (warmup-cosine over
    the new total, so at the old end the rate rises from the old schedule's final
    value to the new one's there), which is not what an uninterrupted run of the new
    length would have done. Any other difference is refused, naming each option.
    The summary says where the run resumed (`resumed_from`, 0 for a fresh start)
    and what it extended (`extended_from`).

    Batches are sharded over all local devices (`jax.sharding`, data parallel);
    `batch_size` must be a multiple of their number. Runs in the dataset's precision.
    Returns a `TrainResult`.
    """
    out = Path(out)
    data_config, _ = load_manifest(data)
    # optax's Adam mixes dtypes internally (bias correction): run it under standard
    # promotion even where the caller made promotion strict.
    with data_config.numerics(), jax.numpy_dtype_promotion("standard"):
        fields, scalars, names, constants = load_split(data, "train")
        valid_fields, valid_scalars, _, valid_constants = load_split(data, "valid")
        valid = (valid_fields, valid_scalars, valid_constants)
        steady = data_config.scenario_obj.steady
        resolved = config.resolved(data_config.num_frames, steady=steady)
        # DyMixOp's τ is of trajectories; a steady map has none (and no DyMixOp).
        tau = (
            0.0
            if steady
            else float(operators.structure_change_coefficient(fields, fields.ndim - 3))
        )
        model = build_model(config, data_config, tau=tau)
        record = {
            "format": run_folder.RUN_FORMAT,
            "version": 1,
            "train": config.to_dict(),
            "resolved": resolved,
            "dataset": {
                "path": str(data),
                "hash": data_config.hash,
                "config": data_config.to_dict(),
            },
            "model": {"tau": tau, "parameters": operators.count_parameters(model)},
        }
        resume, extended_from = run_folder.prepare_run(out, record, overwrite)
        loop = _Loop(config, data_config, model, names, resolved)
        params, summary = loop.run(
            out,
            (fields, scalars, constants),
            valid,
            resume=resume,
            until=until,
            progress=progress,
            extended_from=extended_from,
        )
    return TrainResult(eqx.combine(params, loop.static), summary, out)


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


def _mesh(batch_size: int):
    """Batches split over the local devices, parameters replicated."""
    devices = jax.local_devices()
    if batch_size % len(devices):
        raise ValueError(
            f"`batch_size={batch_size}` is not a multiple of the {len(devices)} "
            "local devices it is sharded over."
        )
    mesh = Mesh(np.asarray(devices), ("batch",))
    return (
        len(devices),
        NamedSharding(mesh, PartitionSpec("batch")),
        NamedSharding(mesh, PartitionSpec()),
    )


class _Loop:
    """One run's jitted pieces (loss, step, validation) and the loop over them."""

    def __init__(self, config, data_config: GenerationConfig, model, names, resolved):
        self.config, self.data_config = config, data_config
        self.names, self.resolved = names, resolved
        self.params, self.static = eqx.partition(model, eqx.is_inexact_array)
        self.optimiser, self.schedule = optimiser_of(config, resolved["warmup_steps"])
        self.num_devices, self.sharded, self.replicated = _mesh(config.batch_size)
        mode = config.parsed_mode
        self.mode, self.loss = mode, get_loss(config.loss)
        self.reference = reference_solver(data_config) if mode.needs_reference else None
        self.train_step = jax.jit(self._train_step)
        self.validate = jax.jit(self._validate)

    def _step_of(self, params):
        model = eqx.combine(params, self.static)
        return model, make_step(model, self.config, self.data_config)

    def _window_loss(self, params, window, scalar, constant, key):
        model, step_of = self._step_of(params)
        if constant is not None:  # steady: the map inputs -> solution
            return self.loss(model(constant), window[0]), jnp.zeros((), window.dtype)
        p = dict(zip(self.names, scalar, strict=True))
        reference = self.reference
        value, inputs = unroll(
            self.mode,
            step_of(p),
            window,
            loss=self.loss,
            reference=None if reference is None else reference(p),
            tbptt=self.config.tbptt,
        )
        x = inputs[0 if self.config.jaws_at == "truth" else -1]
        return value, _penalty(model, self.config, jax.lax.stop_gradient(x), key)

    def _total_loss(self, params, windows, scalars, constants, key):
        keys = jr.split(key, windows.shape[0])
        axes = (None, 0, 0, None if constants is None else 0, 0)
        values, penalties = jax.vmap(self._window_loss, in_axes=axes)(
            params, windows, scalars, constants, keys
        )
        data_loss, penalty = jnp.mean(values), jnp.mean(penalties)
        return data_loss + penalty, (data_loss, penalty)

    def _train_step(self, params, opt_state, windows, scalars, constants, index):
        key = jr.fold_in(jr.key(self.config.seed), index)
        (total, (data_loss, penalty)), grads = jax.value_and_grad(
            self._total_loss, has_aux=True
        )(params, windows, scalars, constants, key)
        updates, opt_state = self.optimiser.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        stats = {
            "loss": total,
            "data_loss": data_loss,
            "penalty": penalty,
            "grad_norm": optax.tree.norm(grads),
        }
        return params, opt_state, stats

    def _validate(self, params, valid_fields, valid_scalars, valid_constants):
        model, step_of = self._step_of(params)
        num_steps = self.resolved["valid_num_steps"]
        if valid_constants is not None:  # steady: nRMSE of the one solve
            errors = jax.lax.map(
                lambda a: nrmse_per_step(model(a[0])[None], a[1][:1]),
                (valid_constants, valid_fields),
            )
            return jnp.mean(jnp.where(jnp.isfinite(errors), errors, jnp.inf))

        def one(traj, scalar):
            step = step_of(dict(zip(self.names, scalar, strict=True)))
            pred = rollout(lambda u: step(u)[0], traj[0], num_steps, throw=False)
            return nrmse_per_step(pred[1:], traj[1:])

        errors = jax.lax.map(lambda a: one(*a), (valid_fields, valid_scalars))
        return jnp.mean(jnp.where(jnp.isfinite(errors), errors, jnp.inf))

    def _restore(self, out: Path, resume: bool):
        """The loop's state and the parameters and optimiser state it goes on from
        (a fresh start, or the checkpoint of a resumed run)."""
        params, opt_state = self.params, self.optimiser.init(self.params)
        state = {
            "step": 0,
            "best_valid": None,
            "best_step": None,
            "seconds": 0.0,
            "compiled_step_bytes": None,
        }
        if resume:
            state = json.loads((out / run_folder.STATE).read_text())
            try:
                params, opt_state = eqx.tree_deserialise_leaves(
                    out / run_folder.CHECKPOINT, (params, opt_state)
                )
            except Exception as e:
                raise ValueError(
                    f"{out / run_folder.CHECKPOINT} cannot be read ({e}); pass "
                    "`overwrite=True` to start the run again."
                ) from None
        truncate_log(out / run_folder.LOG, state["step"])
        put = jax.device_put
        return state, put(params, self.replicated), put(opt_state, self.replicated)

    def run(
        self,
        out,
        train_arrays,
        valid_arrays,
        *,
        resume,
        until,
        progress,
        extended_from=None,
    ):
        config, resolved = self.config, self.resolved
        fields, scalars, constants = train_arrays
        # On the device once, only the frames a validation compares.
        valid_fields, valid_scalars, valid_constants = valid_arrays
        valid_fields = valid_fields[:, : resolved["valid_num_steps"] + 1]
        valid = jax.device_put(
            (valid_fields, valid_scalars, valid_constants), self.replicated
        )
        state, params, opt_state = self._restore(out, resume)
        resumed_from = state["step"]
        total = config.num_train_steps
        stop = total if until is None else min(until, total)
        every = resolved["validate_every"]
        log_every = max(1, min(every, total // 100 or 1))
        start_time = time.perf_counter() - state["seconds"]
        compiled = None
        bar = tracker(
            "training",
            "steps",
            total,
            state["step"],
            progress,
            fields=("loss", "valid"),
        )
        with bar as advance, open(out / run_folder.LOG, "a") as log:
            for index in range(state["step"], stop):
                horizon = 0 if constants is not None else self.mode.horizon
                batch = batch_windows(
                    fields, scalars, horizon, config.batch_size, config.seed, index,
                    constants,
                )  # fmt: skip
                batch = jax.device_put(batch, self.sharded)
                arguments = (params, opt_state, *batch, np.int32(index))
                if compiled is None:
                    compiled = self.train_step.lower(*arguments).compile()
                    state["compiled_step_bytes"] = _memory(compiled)
                params, opt_state, stats = compiled(*arguments)
                done = index + 1
                if done % log_every == 0 or done == stop:
                    entry = self._log_entry(done, index, stats, start_time)
                    log.write(json.dumps(entry) + "\n")
                    advance(0, loss=f"{entry['loss']:.3e}")
                if done % every == 0 or done == stop:
                    value = float(self.validate(params, *valid))
                    log.write(json.dumps({"step": done, "valid_nrmse": value}) + "\n")
                    log.flush()
                    advance(0, valid=f"{value:.3e}")
                    if state["best_valid"] is None or value < state["best_valid"]:
                        state["best_valid"], state["best_step"] = value, done
                        serialise(out / run_folder.BEST, params)
                    state["step"] = done
                    state["seconds"] = time.perf_counter() - start_time
                    serialise(out / run_folder.CHECKPOINT, (params, opt_state))
                    write_json(out / run_folder.STATE, state)
                advance(1)
        summary = {
            "step": state["step"],
            "finished": state["step"] == total,
            "resumed_from": resumed_from,
            "extended_from": extended_from,
            "best_valid_nrmse": state["best_valid"],
            "best_step": state["best_step"],
            "seconds": round(state["seconds"], 2),
            "parameters": operators.count_parameters(params),
            "devices": self.num_devices,
            "compiled_step_bytes": state["compiled_step_bytes"],
        }
        if summary["finished"]:
            write_json(out / run_folder.SUMMARY, summary)
        return params, summary

    def _log_entry(self, done, index, stats, start_time) -> dict:
        entry = {
            "step": done,
            **{k: float(v) for k, v in stats.items()},
            "learning_rate": float(self.schedule(index)),
            "seconds": round(time.perf_counter() - start_time, 3),
        }
        if not np.isfinite(entry["loss"]):
            # Not the data: every window was checked finite when read.
            raise FloatingPointError(
                f"The training loss became {entry['loss']} at step {done} on finite "
                "data (every window is checked when read), so the model diverged; "
                "lower `learning_rate`, keep `clip_norm`, or use a shorter horizon."
            )
        return entry


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
