import jax
import jax.random as jr
import pytest


jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def getkey():
    """Fresh PRNG keys: `getkey()` returns a new key each call."""
    keys = iter(jr.split(jr.key(5678), 1000))
    return lambda: next(keys)
