import os
import pathlib


# One persistent XLA compilation cache for every process of a test run: the xdist
# workers, the notebooks' kernels and the CLI subprocesses (which inherit the
# environment) compile a function once between them instead of once each. Set
# before JAX is imported, which reads these at import.
_CACHE = pathlib.Path(__file__).resolve().parents[1] / ".jax_cache"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# The suite's grids are tiny, so its time is XLA compilation, not execution. Two
# flags make XLA's CPU compiler faster, neither changes IEEE semantics, and the
# benchmarks set neither:
# - the loop emitters instead of the fusion emitters: a one-op eager call compiles
#   in about 30 ms instead of 50 ms, and tests/test_gradients.py with
#   tests/test_steppers.py run in 164 s instead of 249 s (measured 2026-12-02);
# - LLVM's cheapest optimisation level: about a fifth faster again (the demo test:
#   56 s -> 45 s; test_training.py with test_burgers.py: 200 s at level 1, 155 s
#   at level 0).
# The notebooks' kernels inherit this environment (flags and cache), except that
# the operators notebook, which trains for real, gets level 1: 48 s instead of 53 s
# (fresh cache, 2026-12-02; see `_NotebookFlags`). A caller's XLA_FLAGS are kept
# everywhere.
_FAST_EMITTERS = "--xla_cpu_use_fusion_emitters=false"
_OPT_LEVEL = "--xla_backend_optimization_level={}"
_NOTEBOOK_OPT_LEVELS = {"operators.ipynb": 1}
_CALLER_XLA_FLAGS = os.environ.get("XLA_FLAGS")
os.environ.setdefault("XLA_FLAGS", f"{_FAST_EMITTERS} {_OPT_LEVEL.format(0)}")

import jax  # noqa: E402
import jax.random as jr  # noqa: E402
import pytest  # noqa: E402


jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


# The files by their time under `make test` (seconds, measured 2026-12-02), heaviest
# first: with `--dist loadfile` each process takes the next file when it is free, so
# this order keeps the two processes' loads within seconds of each other (pytest's
# own order left one 70 s behind). A file not listed comes last.
_FILE_ORDER = [
    "tests/test_contact.py",  # 166 alone on 2026-12-03 (126 before the dataset)
    "tests/test_gradients.py",  # 124
    "tests/test_training.py",  # 111
    "notebooks/operators.ipynb",  # 80
    "tests/test_porous_medium.py",  # 75
    "tests/test_steppers.py",  # 70
    "tests/test_operators.py",  # 65
    "tests/test_dcdm.py",  # 69 alone
    "tests/test_burgers.py",  # 58
    "tests/test_sorption_darcy.py",  # 48 alone (2026-12-03)
    "tests/test_pde_datasets.py",  # 45 alone (2026-12-03)
    "tests/test_evaluation.py",  # 53
    "tests/test_constraints.py",  # 40
    "notebooks/dcdm.ipynb",  # 40 alone
    "notebooks/contact.ipynb",  # 43 alone
    "tests/test_package.py",  # 39
    "tests/test_datasets.py",  # 33
    "notebooks/pde_zoo.ipynb",  # 30 alone (2026-12-03)
    "notebooks/datasets.ipynb",  # 29
    "tests/test_linear_solve.py",  # 24
    "notebooks/implicit_layers.ipynb",  # 23
    "tests/test_initial_conditions.py",  # 22
    "notebooks/porous_medium.ipynb",  # 20
    "tests/test_jaxopt.py",  # 20
    "tests/test_poisson.py",  # 18
    "tests/test_spectral_pdes.py",  # 14 alone (2026-12-03)
    "tests/test_failures.py",  # 14
    "notebooks/burgers.ipynb",  # 13
]


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(_FILE_ORDER)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


class _NotebookFlags:
    """Sets a notebook kernel's XLA flags while it starts. A plugin, not a conftest
    hook: this conftest's own hooks see only the items under tests/."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        level = _NOTEBOOK_OPT_LEVELS.get(item.path.name)
        if level is None or _CALLER_XLA_FLAGS is not None:
            return (yield)
        ours = os.environ["XLA_FLAGS"]
        os.environ["XLA_FLAGS"] = f"{_FAST_EMITTERS} {_OPT_LEVEL.format(level)}"
        try:
            return (yield)
        finally:
            os.environ["XLA_FLAGS"] = ours


def pytest_configure(config):
    config.pluginmanager.register(_NotebookFlags(), "diffphys-notebook-flags")


@pytest.fixture
def getkey():
    """Fresh PRNG keys: `getkey()` returns a new key each call."""
    keys = iter(jr.split(jr.key(5678), 1000))
    return lambda: next(keys)
