import os
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from ._folder import load_manifest, split_shards
from ._well import CHUNK_CACHE_BYTES


class WindowDataset:
    """Windows of `n_input` → `n_output` frames of one split of a dataset folder,
    read lazily from its shards (random access; nothing is loaded up front).

    Item `i` is a dict of NumPy arrays, channels first as everywhere in diffphys:

    - `input_fields` `(n_input, C, *N)`, `output_fields` `(n_output, C, *N)`: the
        fields stacked on the channel axis in file order (a vector field gives one
        channel per component);
    - `constant_scalars` `(P,)`: the trajectory's parameters, in `scalar_names` order;
    - `input_time` `(n_input,)`, `output_time` `(n_output,)`;
    - `trajectory`: the global trajectory index;
    - `constant_fields` `(C_c, *N)`, for a steady scenario (Darcy): its inputs
        (The Well's constant fields). Its windows are the one frame, the solution:
        `n_input=0` (the default there), `n_output=1`.

    Every window read is checked for NaN and inf (generation never writes them, so
    one is a corrupt shard): a `ValueError` names the shard and the trajectory.
    Frames of a window are `stride` saved frames apart. With `n_output=None` each
    trajectory gives one window: `n_input` frames, then the rest of it (rollout
    evaluation). Files are opened on first use in each process, never pickled, so
    the object can be handed to worker processes (torch, grain, multiprocessing).
    """

    def __init__(
        self,
        folder,
        split: str = "train",
        *,
        n_input: int | None = None,
        n_output: int | None = 1,
        stride: int = 1,
        verify: bool = False,
    ):
        self.folder = Path(folder)
        self.config, manifest = load_manifest(self.folder, verify=verify)
        self.split = split
        self.shards = split_shards(manifest, split)
        frames = self.config.num_frames
        sc = self.config.scenario_obj
        if n_input is None:
            n_input = 0 if sc.steady else 1
        if sc.steady and (n_input != 0 or n_output not in (None, 1)):
            raise ValueError(
                f"Scenario {sc.name!r} is steady: a sample is its inputs "
                "(`constant_fields`) and one frame, the solution; open it with "
                "n_input=0, n_output=1."
            )
        minimum = 0 if sc.steady else 1
        if n_input < minimum or stride < 1 or (n_output is not None and n_output < 1):
            raise ValueError("n_input, n_output and stride must be >= 1.")
        if n_output is None:
            n_output = (frames - 1) // stride - n_input + 1
        span = (n_input + n_output - 1) * stride + 1
        if n_output < 1 or span > frames:
            raise ValueError(
                f"A window of {n_input} + {n_output} frames {stride} apart needs "
                f"{span} frames; the trajectories have {frames}."
            )
        self.n_input, self.n_output, self.stride = n_input, n_output, stride
        self.windows_per_trajectory = frames - span + 1
        sizes = [s["samples"][1] - s["samples"][0] for s in self.shards]
        self._first = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.scalar_names = [name for name, _ in self.config.params]
        self.field_names = [f.name for f in sc.fields]
        self.time = np.arange(frames) * self.config.frame_interval
        self._files: dict[int, h5py.File] = {}
        self._pid = os.getpid()

    @property
    def num_trajectories(self) -> int:
        return int(self._first[-1])

    def __len__(self) -> int:
        return self.num_trajectories * self.windows_per_trajectory

    def _file(self, index: int) -> h5py.File:
        if self._pid != os.getpid():  # a worker process: never reuse the parent's
            self._files, self._pid = {}, os.getpid()
        if index not in self._files:
            path = self.folder / self.shards[index]["path"]
            self._files[index] = h5py.File(path, "r", rdcc_nbytes=CHUNK_CACHE_BYTES)
        return self._files[index]

    def __getitem__(self, i: int | np.integer) -> dict[str, np.ndarray]:
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows.")
        i %= len(self)
        trajectory, start = divmod(i, self.windows_per_trajectory)
        shard = int(np.searchsorted(self._first, trajectory, side="right")) - 1
        row = trajectory - self._first[shard]
        f = self._file(shard)
        span = (self.n_input + self.n_output - 1) * self.stride + 1
        frames = slice(start, start + span, self.stride)
        sc = self.config.scenario_obj

        def channels(field, index):
            x = f[f"t{field.tensor_order}_fields/{field.name}"][index]
            x = x.reshape(x.shape[: x.ndim - field.tensor_order] + (-1,))
            return np.moveaxis(x, -1, -1 - len(sc.space_shape(self.config.num_points)))

        x = np.concatenate([channels(fld, (row, frames)) for fld in sc.fields], axis=1)
        constants = [channels(fld, row) for fld in sc.constant_fields]
        scalars = [
            f["scalars"][n][row] if f["scalars"][n].shape else f["scalars"][n][()]
            for n in self.scalar_names
        ]
        finite = np.isfinite(x).all() and np.isfinite(scalars).all()
        if not (finite and all(np.isfinite(c).all() for c in constants)):
            raise ValueError(
                f"{self.folder / self.shards[shard]['path']}: trajectory "
                f"{self.shards[shard]['samples'][0] + row} (row {row}) holds NaN or "
                "inf; the shard is corrupt (`diffphys info` checks every checksum): "
                "delete it and re-run the same `diffphys generate`."
            )
        times = self.time[frames]
        item = {
            "input_fields": x[: self.n_input],
            "output_fields": x[self.n_input :],
            "constant_scalars": np.asarray(scalars, dtype=x.dtype),
            "input_time": times[: self.n_input],
            "output_time": times[self.n_input :],
            "trajectory": np.asarray(self.shards[shard]["samples"][0] + row),
        }
        if constants:
            item["constant_fields"] = np.concatenate(constants, axis=0)
        return item

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        epoch: int = 0,
        drop_last: bool = False,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Batches of windows, each value stacked on a new leading axis. The order is
        a pure function of `(seed, epoch)` when shuffling. Feed them to a jitted step
        directly (NumPy arrays are moved to the device on call)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        order = np.arange(len(self))
        if shuffle:
            order = np.random.default_rng([seed, epoch]).permutation(order)
        stop = len(order) - len(order) % batch_size if drop_last else len(order)
        for first in range(0, stop, batch_size):
            items = [self[j] for j in order[first : first + batch_size]]
            yield {k: np.stack([item[k] for item in items]) for k in items[0]}

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = {}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_files"] = {}
        return state

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open(folder, split: str = "train", **kwargs) -> WindowDataset:  # noqa: A001
    """Open one split of a dataset folder as windows; see `WindowDataset`."""
    return WindowDataset(folder, split, **kwargs)
