"""Training a `DCDMNet` (Kaneda et al. 2023, §5–6 of our fact sheet) into a run folder
with the conventions of `dp.training.train`: `config.json`, `checkpoint.eqx` +
`checkpoint.json` (exact resume), `best.eqx`, `log.jsonl`, `summary.json`, and the
Lanczos training data `data.npz`, all written atomically."""

import dataclasses
import json
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax

from ..._progress import tracker
from ..._store import claim_folder, serialise, truncate_log, write_json
from ._dcdm import DCDM, dcdm_loss, DCDMNet
from ._fluid import FluidPoisson
from ._lanczos import ritz_pairs, ritz_training_data


RUN_FORMAT = "diffphys-dcdm-run"
CONFIG, DATA, CHECKPOINT, STATE = (
    "config.json",
    "data.npz",
    "checkpoint.eqx",
    "checkpoint.json",
)
BEST, LOG, SUMMARY = "best.eqx", "log.jsonl", "summary.json"
FILES = (CONFIG, DATA, CHECKPOINT, STATE, BEST, LOG, SUMMARY)


# The training box's walls by name: FluidPoisson's `walls`, or the pair of every
# axis but the last (which gets solid below, air above).
_TRAINING_WALLS = {"solid": "solid", "air": "air", "open-top": (("solid", "solid"),)}


@dataclasses.dataclass(frozen=True)
class DCDMTrainConfig:
    """What `train_dcdm` trains, on which operator and data.

    **Fields:**

    - `num_spatial_dims`, `num_points`: the training grid, `num_points^d` cells of
        the empty box (the authors train on the empty box too).
    - `walls`: the box walls of the training operator: `"solid"` (default) is the
        authors' closed Neumann box, `"air"` a Dirichlet box, `"open-top"` solid
        walls with air above the last axis's high wall (the closed box with an
        open top of a pressure solve).
    - `lanczos_steps`: `m`, the Lanczos steps of the Ritz data (the authors' 10,000
        at 64³ is out of reach here; the basis costs `m × N^d` floats).
    - `num_samples`: training right-hand sides drawn from the Ritz vectors (the
        authors': 20,000); a tenth more are drawn for the validation loss.
    - `num_boosted`, `boost`: the Ritz weighting (`None`: `m/2 + m/20`, ×9).
    - `width`, `full_convs`, `coarse_pairs`, `fine_pairs`: the `DCDMNet`.
    - `batch_size`, `learning_rate`, `num_train_steps`: Adam (the authors: batch
        10, learning rate 1e-4).
    - `validate_every`: steps between validations: the loss on held-out Ritz
        samples and DCDM's mean iteration count to `valid_rtol` on
        `num_valid_solves` Gaussian right-hand sides.
    - `seed`: of the data, the initialisation and the batches.
    """

    num_spatial_dims: int = 2
    num_points: int = 32
    walls: str = "solid"
    lanczos_steps: int = 400
    num_samples: int = 2000
    num_boosted: int | None = None
    boost: float = 9.0
    width: int = 16
    full_convs: int = 4
    coarse_pairs: int = 3
    fine_pairs: int = 2
    batch_size: int = 16
    learning_rate: float = 1e-3
    num_train_steps: int = 2000
    validate_every: int = 200
    valid_rtol: float = 1e-4
    num_valid_solves: int = 4
    seed: int = 0

    def __post_init__(self):
        if self.num_spatial_dims not in (2, 3):
            raise ValueError(
                f"`num_spatial_dims` must be 2 or 3, got {self.num_spatial_dims}."
            )
        if self.num_points < 4 or self.num_points % 2:
            raise ValueError(
                "`num_points` must be even and at least 4 (the network pools by 2), "
                f"got {self.num_points}."
            )
        size = self.num_points**self.num_spatial_dims
        if not 1 <= self.lanczos_steps <= size:
            raise ValueError(
                f"`lanczos_steps` must be between 1 and the number of cells ({size}), "
                f"got {self.lanczos_steps}."
            )
        for name in ("num_samples", "batch_size", "num_train_steps", "validate_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}.")
        if self.batch_size > self.num_samples:
            raise ValueError(
                f"`batch_size` {self.batch_size} exceeds `num_samples` "
                f"{self.num_samples}; lower `batch_size`."
            )
        if not self.learning_rate > 0:
            raise ValueError(f"`learning_rate` must be > 0, got {self.learning_rate}.")
        if self.walls not in _TRAINING_WALLS:
            raise ValueError(
                f"`walls` must be one of {', '.join(_TRAINING_WALLS)}, got "
                f"{self.walls!r}."
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DCDMTrainConfig":
        return cls(**data)

    def network(self, key) -> DCDMNet:
        return DCDMNet(
            self.num_spatial_dims,
            width=self.width,
            full_convs=self.full_convs,
            coarse_pairs=self.coarse_pairs,
            fine_pairs=self.fine_pairs,
            key=key,
        )

    def operator(self) -> FluidPoisson:
        d = self.num_spatial_dims
        walls = _TRAINING_WALLS[self.walls]
        walls = (
            walls if isinstance(walls, str) else walls * (d - 1) + (("solid", "air"),)
        )
        return FluidPoisson(jnp.zeros((self.num_points,) * d, jnp.int32), walls=walls)


def _x64():
    enable_x64 = getattr(jax, "enable_x64", None)
    if enable_x64 is None:  # jax < 0.7 kept it in jax.experimental
        from jax.experimental import enable_x64
    return enable_x64(True)


def _make_data(config: DCDMTrainConfig):
    # In float64 whatever the caller's flag (the Lanczos basis must stay
    # orthonormal), stored in float32 as the authors do.
    with _x64():
        op = config.operator()
        key = jr.key(config.seed)
        values, vectors = ritz_pairs(
            op,
            op.flags.shape,
            config.lanczos_steps,
            key=jr.fold_in(key, 0),
            dtype=jnp.float64,
            project=op.project,
        )
        num_valid = max(config.batch_size, config.num_samples // 10)
        samples = ritz_training_data(
            values,
            vectors,
            config.num_samples + num_valid,
            key=jr.fold_in(key, 1),
            num_boosted=config.num_boosted,
            boost=config.boost,
        )
        samples = np.asarray(samples)
        values = np.asarray(values)
    return {
        "train": samples[: config.num_samples],
        "valid": samples[config.num_samples :],
        "ritz_values": values,
    }


def _compare(record):
    def compare(folder):
        path = folder / CONFIG
        if not path.is_file():
            return None
        old = json.loads(path.read_text())
        if old.get("format") != RUN_FORMAT:
            return "a run of another kind"
        a, b = old.get("train", {}), record["train"]
        differ = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        return (
            "different options: "
            + "; ".join(f"`{k}` {a.get(k)!r} → {b.get(k)!r}" for k in differ)
            if differ
            else ""
        )

    return compare


def train_dcdm(
    config: DCDMTrainConfig,
    out,
    *,
    overwrite: bool = False,
    until: int | None = None,
    progress: bool | None = None,
) -> tuple[DCDMNet, dict]:
    """Train a `DCDMNet` with `dcdm_loss` on Ritz data of the empty box into the run
    folder `out`; a folder holding this run resumes exactly from its checkpoint.

    Runs in float32 (the network and the loss; the data is made in float64).
    Returns `(network, summary)` with the best network by validation iterations.
    `until` stops after that many steps (resume later).
    """
    out = Path(out)
    record = {"format": RUN_FORMAT, "train": config.to_dict()}
    resume = claim_folder(
        out,
        kind="DCDM run",
        compare=_compare(record),
        owned=lambda: [out / name for name in FILES],
        overwrite=overwrite,
    )
    if not resume:
        write_json(out / CONFIG, record)
    if (out / DATA).is_file():
        with np.load(out / DATA) as f:
            data = {k: f[k] for k in f.files}
    else:
        data = _make_data(config)
        tmp = out / f".{DATA}.tmp.npz"
        np.savez(tmp, **data)
        tmp.replace(out / DATA)
    network = config.network(jr.fold_in(jr.key(config.seed), 2))
    params, static = eqx.partition(
        jax.tree.map(
            lambda x: x.astype(jnp.float32) if eqx.is_inexact_array(x) else x, network
        ),
        eqx.is_inexact_array,
    )
    opt_state = optax.adam(config.learning_rate).init(params)
    state = {"step": 0, "best_valid_steps": None, "best_step": None, "seconds": 0.0}
    if resume and (out / STATE).is_file():
        state = json.loads((out / STATE).read_text())
        params, opt_state = eqx.tree_deserialise_leaves(
            out / CHECKPOINT, (params, opt_state)
        )
        truncate_log(out / LOG, state["step"])
    op = config.operator()
    train_data = jnp.asarray(data["train"], jnp.float32)
    valid_data = jnp.asarray(data["valid"], jnp.float32)
    shape = op.flags.shape
    valid_rhs = jax.vmap(op.project)(
        jr.normal(
            jr.fold_in(jr.key(config.seed), 3),
            (config.num_valid_solves, *shape),
            jnp.float32,
        )
    )

    total = config.num_train_steps
    stop = total if until is None else min(until, total)
    start_time = time.perf_counter() - state["seconds"]
    log_every = max(1, min(config.validate_every, total // 100 or 1))
    bar = tracker(
        "training DCDM",
        "steps",
        total,
        state["step"],
        progress,
        fields=("loss", "valid"),
    )
    with bar as advance, open(out / LOG, "a") as log:
        for index in range(state["step"], stop):
            params, opt_state, loss, grad_norm = _train_step(
                config, static, params, opt_state, train_data, np.int32(index)
            )
            done = index + 1
            if done % log_every == 0 or done == stop:
                entry = {
                    "step": done,
                    "loss": float(loss),
                    "grad_norm": float(grad_norm),
                    "seconds": round(time.perf_counter() - start_time, 3),
                }
                if not np.isfinite(entry["loss"]):
                    raise FloatingPointError(
                        f"The DCDM loss became {entry['loss']} at step {done}; lower "
                        "`learning_rate`."
                    )
                log.write(json.dumps(entry) + "\n")
                advance(0, loss=f"{entry['loss']:.3e}")
            if done % config.validate_every == 0 or done == stop:
                valid_loss, steps = (
                    float(v)
                    for v in _validate(config, static, params, valid_data, valid_rhs)
                )
                log.write(
                    json.dumps(
                        {"step": done, "valid_loss": valid_loss, "valid_steps": steps}
                    )
                    + "\n"
                )
                log.flush()
                advance(0, valid=f"{steps:.1f} it")
                if (
                    state["best_valid_steps"] is None
                    or steps < state["best_valid_steps"]
                ):
                    state["best_valid_steps"], state["best_step"] = steps, done
                    serialise(out / BEST, params)
                state["step"] = done
                state["seconds"] = time.perf_counter() - start_time
                serialise(out / CHECKPOINT, (params, opt_state))
                write_json(out / STATE, state)
            advance(1)
    summary = {
        "step": state["step"],
        "finished": state["step"] == total,
        "best_valid_steps": state["best_valid_steps"],
        "best_step": state["best_step"],
        "seconds": round(state["seconds"], 2),
        "parameters": int(sum(x.size for x in jax.tree.leaves(params))),
        "ritz_values": [float(data["ritz_values"][0]), float(data["ritz_values"][-1])],
    }
    if summary["finished"]:
        write_json(out / SUMMARY, summary)
    best = (
        eqx.tree_deserialise_leaves(out / BEST, params)
        if (out / BEST).is_file()
        else params
    )
    return eqx.combine(best, static), summary


def load_dcdm_network(path) -> DCDMNet:
    """The best network of a `train_dcdm` run folder (float32)."""
    folder = Path(path)
    config_path = folder / CONFIG
    if not config_path.is_file():
        raise ValueError(f"{folder} is not a DCDM training run (no {CONFIG}).")
    try:
        record = json.loads(config_path.read_text())
        if record.get("format") != RUN_FORMAT:
            raise ValueError("not a DCDM run file")
        config = DCDMTrainConfig.from_dict(record["train"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{config_path} is corrupt or not a DCDM run ({e}).") from None
    if not (folder / BEST).is_file():
        raise ValueError(
            f"{folder} has no {BEST}; train it first (diffphys train-dcdm)."
        )
    skeleton = eqx.filter_eval_shape(config.network, jr.key(0))
    skeleton = jax.tree.map(
        lambda x: (
            jax.ShapeDtypeStruct(x.shape, jnp.float32)
            if isinstance(x, jax.ShapeDtypeStruct)
            else x
        ),
        skeleton,
    )
    params, static = eqx.partition(
        skeleton, lambda x: isinstance(x, jax.ShapeDtypeStruct)
    )
    params = eqx.tree_deserialise_leaves(folder / BEST, params)
    return eqx.combine(params, static)


# Module-level and jitted with the config static, so that runs of one config (a
# resumed run, a test's runs) share their compilation.
@eqx.filter_jit
def _train_step(config, static, params, opt_state, train_data, index):
    op = config.operator()
    # A new permutation of the samples each epoch.
    n = config.num_samples
    position = index * config.batch_size + jnp.arange(
        config.batch_size, dtype=index.dtype
    )
    key = jr.fold_in(jr.key(config.seed), 4)
    orders = jax.vmap(lambda e: jr.permutation(jr.fold_in(key, e), n))(position // n)
    batch = train_data[orders[jnp.arange(config.batch_size), position % n]]

    def loss_of(params):
        return dcdm_loss(eqx.combine(params, static), op, batch)

    loss, grads = jax.value_and_grad(loss_of)(params)
    # optax's bias correction mixes a Python float with the integer step count.
    with jax.numpy_dtype_promotion("standard"):
        updates, opt_state = optax.adam(config.learning_rate).update(
            grads, opt_state, params
        )
    return optax.apply_updates(params, updates), opt_state, loss, optax.tree.norm(grads)


@eqx.filter_jit
def _validate(config, static, params, valid_data, valid_rhs):
    op = config.operator()
    net = eqx.combine(params, static)
    solver = DCDM(net, rtol=config.valid_rtol, max_steps=200, throw=False)
    steps = jax.vmap(lambda b: solver(op, b).stats["num_steps"])(valid_rhs)
    return dcdm_loss(net, op, valid_data), jnp.mean(steps.astype(jnp.float32))
