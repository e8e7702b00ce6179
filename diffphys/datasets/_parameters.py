import abc
import math

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, PRNGKeyArray


class AbstractSampler(eqx.Module):
    """How one per-trajectory parameter is drawn: `sampler(key) -> scalar`."""

    @abc.abstractmethod
    def __call__(self, key: PRNGKeyArray) -> Array:
        """One draw, a scalar of the default float dtype."""

    @property
    @abc.abstractmethod
    def bounds(self) -> tuple[float, float]:
        """The smallest and largest value a draw can take (for stability checks)."""

    @property
    @abc.abstractmethod
    def spec(self) -> str:
        """The command-line form: `value`, `lo:hi`, `lo:hi:log` or `a,b,c`."""

    @property
    def varies(self) -> bool:
        low, high = self.bounds
        return low != high


class Fixed(AbstractSampler):
    """The same value for every trajectory."""

    value: float = eqx.field(static=True)

    def __call__(self, key: PRNGKeyArray) -> Array:
        del key
        return jnp.asarray(self.value, dtype=float)

    @property
    def bounds(self) -> tuple[float, float]:
        return (self.value, self.value)

    @property
    def spec(self) -> str:
        return repr(self.value)


class Uniform(AbstractSampler):
    """Uniform on `[low, high]`, or log-uniform (`log=True`, needs `low > 0`)."""

    low: float = eqx.field(static=True)
    high: float = eqx.field(static=True)
    log: bool = eqx.field(default=False, static=True)

    def __check_init__(self):
        if not self.low < self.high:
            raise ValueError(f"A range needs lo < hi, got {self.low}:{self.high}.")
        if self.log and self.low <= 0:
            raise ValueError(f"A log range needs lo > 0, got {self.low}.")

    def __call__(self, key: PRNGKeyArray) -> Array:
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            return jnp.exp(jr.uniform(key, minval=lo, maxval=hi))
        return jr.uniform(key, minval=self.low, maxval=self.high)

    @property
    def bounds(self) -> tuple[float, float]:
        return (self.low, self.high)

    @property
    def spec(self) -> str:
        return f"{self.low!r}:{self.high!r}" + (":log" if self.log else "")


class Choice(AbstractSampler):
    """One of a list of values, each equally likely."""

    values: tuple[float, ...] = eqx.field(static=True)

    def __check_init__(self):
        if len(self.values) < 2:
            raise ValueError("A list of values needs at least two entries.")

    def __call__(self, key: PRNGKeyArray) -> Array:
        index = jr.randint(key, (), 0, len(self.values))
        return jnp.asarray(self.values, dtype=float)[index]

    @property
    def bounds(self) -> tuple[float, float]:
        return (min(self.values), max(self.values))

    @property
    def spec(self) -> str:
        return ",".join(repr(v) for v in self.values)


def _number(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"Cannot read {text!r} in {spec!r} as a number; write value, lo:hi, "
            "lo:hi:log or a,b,c."
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"{spec!r} holds a non-finite value.")
    return value


def parse_sampler(spec: str | float | AbstractSampler) -> AbstractSampler:
    """Read a parameter spec: `0.01` (fixed), `0.001:0.1` (uniform),
    `0.001:0.1:log` (log-uniform) or `0.01,0.02,0.05` (one of a list)."""
    if isinstance(spec, AbstractSampler):
        return spec
    if isinstance(spec, int | float):
        return Fixed(_number(str(spec), str(spec)))
    text = spec.strip()
    if ":" in text:
        parts = text.split(":")
        log = len(parts) == 3 and parts[2].strip() == "log"
        if len(parts) not in (2, 3) or (len(parts) == 3 and not log):
            raise ValueError(f"Bad range {spec!r}: write lo:hi or lo:hi:log.")
        return Uniform(_number(parts[0], spec), _number(parts[1], spec), log)
    if "," in text:
        return Choice(tuple(_number(p, spec) for p in text.split(",") if p.strip()))
    return Fixed(_number(text, spec))
