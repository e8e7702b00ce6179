import jax.numpy as jnp
import numpy as np


def moments(x, tensor_order: int) -> dict:
    """Mean and sum of squared deviations of one trajectory `(T, *space[, D])` and of
    its one-frame time differences, per component (jit- and vmap-friendly)."""

    def pair(y):
        axes = tuple(range(y.ndim - tensor_order))
        mean = jnp.mean(y, axis=axes, keepdims=True)
        m2 = jnp.sum(jnp.square(y - mean), axis=axes)
        return mean.reshape(m2.shape), m2

    return {"value": pair(x), "delta": pair(jnp.diff(x, axis=0))}


class RunningStats:
    """Per-component count, mean and sum of squared deviations of a field and of its
    one-frame time differences, merged batch by batch in float64 (Chan, Golub &
    LeVeque 1979) from per-trajectory `moments`."""

    def __init__(self, num_frames: int, num_space_points: int):
        self.counts = {
            "value": float(num_frames * num_space_points),
            "delta": float((num_frames - 1) * num_space_points),
        }
        self.parts = {"value": None, "delta": None}

    def update(self, batch_moments: dict) -> None:
        """Merge `moments` of a batch of trajectories (leading axis B)."""
        for part, (means, m2s) in batch_moments.items():
            n = self.counts[part]
            if n == 0:
                continue
            means = np.asarray(means, np.float64)
            mean = means.mean(axis=0)
            m2 = np.asarray(m2s, np.float64).sum(axis=0)
            m2 = m2 + n * np.sum(np.square(means - mean), axis=0)
            self.parts[part] = combine(self.parts[part], (n * len(means), mean, m2))

    def to_record(self) -> dict:
        return {
            part: None
            if value is None
            else {
                "count": float(value[0]),
                "mean": np.atleast_1d(value[1]).tolist(),
                "m2": np.atleast_1d(value[2]).tolist(),
            }
            for part, value in self.parts.items()
        }


def combine(a, b):
    """Merge two `(count, mean, m2)` triples (either may be None)."""
    if a is None:
        return b
    if b is None:
        return a
    (na, ma, sa), (nb, mb, sb) = a, b
    n = na + nb
    delta = np.asarray(mb) - np.asarray(ma)
    mean = np.asarray(ma) + delta * nb / n
    m2 = np.asarray(sa) + np.asarray(sb) + delta**2 * na * nb / n
    return n, mean, m2


def from_record(record):
    if record is None:
        return None
    return record["count"], np.asarray(record["mean"]), np.asarray(record["m2"])


def summarise(triple, tensor_order: int) -> dict[str, float | list]:
    """`{mean, std, rms}` (population std): scalars for t0 fields, lists for t1,
    nested lists for t2."""
    n, mean, m2 = triple
    var = np.asarray(m2) / n
    values = {"mean": mean, "std": np.sqrt(var), "rms": np.sqrt(var + mean**2)}
    return {
        k: float(v.ravel()[0]) if tensor_order == 0 else np.asarray(v).tolist()
        for k, v in values.items()
    }
