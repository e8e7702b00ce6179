"""PDE datasets: initial-condition generators, the scenario registry, sharded and
resumable generation into The Well's HDF5 layout, checking, PDEBench export and a
lazy windowed loader.

Use it as `dp.datasets`; this package is nested on purpose, so it never shadows the
HuggingFace `datasets` package.
"""

from . import (
    _contact,  # noqa: F401 (registers contact-spheres)
    _pde_scenarios,  # noqa: F401 (registers ks, ns-2d, darcy, ...)
)
from ._config import (
    GenerationConfig as GenerationConfig,
    make_config as make_config,
    Shard as Shard,
    steps_per_frame as steps_per_frame,
)
from ._engines import generate as generate
from ._export import export_pdebench as export_pdebench
from ._folder import load_manifest as load_manifest, resume_state as resume_state
from ._info import describe as describe
from ._initial_conditions import (
    AbstractInitialCondition as AbstractInitialCondition,
    FromCallable as FromCallable,
    GaussianRandomField as GaussianRandomField,
    PiecewiseConstant as PiecewiseConstant,
    RandomTruncatedFourier as RandomTruncatedFourier,
    SineSum as SineSum,
    ThresholdedGaussianField as ThresholdedGaussianField,
)
from ._join import join as join
from ._loader import open as open, WindowDataset as WindowDataset
from ._parameters import (
    AbstractSampler as AbstractSampler,
    Choice as Choice,
    Fixed as Fixed,
    parse_sampler as parse_sampler,
    Uniform as Uniform,
)
from ._scenarios import (
    get_scenario as get_scenario,
    list_scenarios as list_scenarios,
    load_plugins as load_plugins,
    Parameter as Parameter,
    register_scenario as register_scenario,
    SavedField as SavedField,
    Scenario as Scenario,
    scenario_module as scenario_module,
)
from ._well import check_file as check_file, SchemaError as SchemaError
