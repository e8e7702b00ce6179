"""The training data in memory and its batches: windows of `K + 1` frames, a pure
function of `(seed, step)` so a resumed run reads what an uninterrupted one would."""

import functools

import numpy as np

from ..datasets import open as open_split


def load_split(folder, split: str):
    """All trajectories of one split in memory (NumPy): fields `(B, T, C, *N)`,
    parameters `(B, P)`, the parameters' names, and a steady scenario's inputs
    `(B, C_c, *N)` (None for time-dependent ones)."""
    dataset = open_split(folder, split, n_input=None, n_output=None)
    if dataset.num_trajectories == 0:
        raise ValueError(f"Split {split!r} of {folder} holds no trajectories.")
    with dataset:
        items = [dataset[i] for i in range(dataset.num_trajectories)]
    fields = np.stack(
        [np.concatenate([it["input_fields"], it["output_fields"]]) for it in items]
    )
    scalars = np.stack([it["constant_scalars"] for it in items])
    constants = None
    if "constant_fields" in items[0]:
        constants = np.stack([it["constant_fields"] for it in items])
    return fields, scalars, dataset.scalar_names, constants


@functools.lru_cache(maxsize=2)  # one permutation per epoch, not per step
def window_order(num_trajectories, num_frames, horizon, *, seed, epoch):
    """The `(trajectory, start)` windows of one epoch, shuffled by `(seed, epoch)`."""
    starts = num_frames - horizon
    if starts < 1 or horizon < 0:
        raise ValueError(
            f"Windows of {horizon + 1} frames do not fit trajectories of {num_frames} "
            "frames; use a shorter horizon K or a dataset with more frames."
        )
    order = np.random.default_rng([seed, epoch]).permutation(num_trajectories * starts)
    return np.stack(np.divmod(order, starts), axis=1)


def batch_windows(fields, scalars, horizon, batch_size, seed, step, constants=None):
    """Training batch number `step`: a pure function of `(seed, step)`, so a resumed
    run reads exactly the batches an uninterrupted one would. Returns the windows,
    their parameters and (for a steady scenario, `horizon = 0`) their inputs."""
    num_windows = fields.shape[0] * (fields.shape[1] - horizon)
    per_epoch = num_windows // batch_size
    if per_epoch < 1:
        raise ValueError(
            f"The training split has {num_windows} windows of {horizon + 1} frames, "
            f"fewer than one batch of {batch_size}; lower `batch_size`."
        )
    epoch, index = divmod(step, per_epoch)
    order = window_order(
        fields.shape[0], fields.shape[1], horizon, seed=seed, epoch=epoch
    )
    chosen = order[index * batch_size : (index + 1) * batch_size]
    offsets = chosen[:, 1:2] + np.arange(horizon + 1)
    inputs = None if constants is None else constants[chosen[:, 0]]
    return fields[chosen[:, :1], offsets], scalars[chosen[:, 0]], inputs
