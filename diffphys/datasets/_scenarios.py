import importlib
import importlib.metadata
import itertools
import math
import sys
from collections.abc import Callable, Mapping
from types import MappingProxyType

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from ..solvers import (
    cell_centres,
    ConservationLaw,
    Dirichlet,
    Outflow,
    PorousMedium,
    rollout,
)
from ..solvers.burgers import BurgersFV, BurgersSpectral
from ..solvers.conservation_law import exact as hyperbolic
from ..solvers.porous_medium import Constant, exact as gpme, PowerLaw, Stefan
from ._initial_conditions import RandomTruncatedFourier, SineSum
from ._parameters import AbstractSampler, parse_sampler


class Parameter(eqx.Module):
    """A physical parameter of a scenario, drawn per trajectory.

    - `default`: the sampler used when the user names none (a spec string such as
        `"0.01"` or `"0.001:0.1:log"`, or an `AbstractSampler`).
    - `low`, `high`: the admissible values; `low_open` (`high_open`) excludes
        `low` (`high`) itself.
    - `description`: one line for `--help` and the dataset's yaml.
    - `pdebench_name`: the attribute name PDEBench uses for it (e.g. `Nu`);
        `pdebench_scale`: PDEBench's value of it is this times ours (π for Burgers'
        viscosity: PDEBench's equation is `u_t + (u²/2)_x = (ν/π) u_xx`).
    """

    default: str | AbstractSampler = eqx.field(static=True)
    low: float = eqx.field(static=True, default=-math.inf)
    high: float = eqx.field(static=True, default=math.inf)
    low_open: bool = eqx.field(static=True, default=False)
    high_open: bool = eqx.field(static=True, default=False)
    description: str = eqx.field(static=True, default="")
    pdebench_name: str | None = eqx.field(static=True, default=None)
    pdebench_scale: float = eqx.field(static=True, default=1.0)

    def check(self, name: str, sampler: AbstractSampler) -> None:
        lo, hi = sampler.bounds
        too_low = lo <= self.low if self.low_open else lo < self.low
        too_high = hi >= self.high if self.high_open else hi > self.high
        if too_low or too_high:
            raise ValueError(
                f"`params` {name}={sampler.spec} leaves the admissible range "
                f"{self.admissible}."
            )

    @property
    def admissible(self) -> str:
        """The admissible range in interval notation, e.g. `(0.0, 1.0)`."""
        low, high = "(["[not self.low_open], ")]"[not self.high_open]
        return f"{low}{self.low}, {self.high}{high}"


class SavedField(eqx.Module):
    """A field written to disk: `tensor_order` 0 (scalar, one channel), 1 (vector,
    one channel per spatial dimension `D`) or 2 (tensor, `D²` channels, row-major);
    `channels` are the state's channel indices."""

    name: str = eqx.field(static=True)
    tensor_order: int = eqx.field(static=True)
    channels: tuple[int, ...] = eqx.field(static=True)


class Scenario(eqx.Module):
    """A named PDE data-generation recipe.

    - `make_stepper(domain_extent, num_points, dt, **params)`: builds the stepper;
        `params` are scalar arrays (traced under `vmap`), one per `parameters` entry.
    - `initial_condition(num_points, *, key) -> (C, *N)`.
    - `max_dt(domain_extent, num_points, **largest_params) -> float`: the largest
        stable step for the largest admissible parameter values drawn.
    - `parameters`: name → `Parameter`; stored as The Well `scalars`.
    - `fields`: what is saved; `boundary`: The Well `bc_type` of every axis.
    - Defaults of the grid and the horizon: `domain_extent`, `num_points`,
        `num_steps` saved frames (after the initial one) `frame_interval` apart,
        `num_samples`; `origin`: the left end of the domain.
    - `defaults_from`: where those defaults come from (a benchmark's recipe, a
        paper's appendix), shown by `diffphys scenarios`.
    - `exact(x, t, **params) -> (C, *N)`: the analytic solution, if there is one:
        `diffphys generate --source exact` evaluates it on the grid instead of
        running the solver, and without an `initial_condition` the solver starts
        from it at `t = 0`.

    - `entities`: `None` for data on a grid, or the name of an entity axis (`"body"`):
        then `num_points` counts entities, the state is `(C, num_points)` and the
        fields are per entity, with `num_spatial_dims`-component vectors
        (docs/design-decisions.md, "Per-body datasets").
    - `num_points_range`: the admissible `num_points` (inclusive).
    - `precisions`: the admissible precisions, the default first.
    - `vectorise`: compute a batch's trajectories with `vmap` (else one after
        another, `lax.map`: for solvers whose steps branch, where `vmap` would run
        every branch).
    - `warmup`: simulated time run from the initial condition and discarded before
        the first saved frame (to start on an attractor, e.g. Kuramoto–Sivashinsky).
    - `conserved`: the state channels whose integral the PDE conserves on its
        domain (with the boundary fluxes where it is open): evaluation's mass drift
        is measured on them (`None`: every channel; `()`: none). On an open domain
        with a conservative stepper, its `mass(u)` is what is conserved.
    - `vertices`: the `N` points are the nodes `origin + i L/(N − 1)`, boundary
        included (Darcy), not cell centres.
    - `steady`: a steady problem (Darcy): `initial_condition(N, key)` draws the
        inputs, stored as `constant_fields`; `make_stepper(L, N, dt, **params)` is
        the solver mapping them to the solution, stored as the one frame of the
        `fields` (`num_steps = 0`). Training learns that map; evaluation compares
        it once.
    - `constant_fields`: `SavedField`s of the inputs of a steady scenario (their
        channels index the array `initial_condition` returns), stored with
        `time_varying = False` (The Well's constant fields).
    - `pdebench_layout`: how `export_pdebench` writes the dataset: `"single"` (one
        file, `tensor` or per-component arrays, test samples first; a steady
        scenario's constant field goes in `nu`, as PDEBench's Darcy files) or
        `"per-sample"` (PDEBench's `.h5` of groups `0000/data (T, *N, C)`,
        `grid/x`, `grid/t`, read by its `FNODatasetMult`, test samples last).

    Grids: periodic domains hold `N` points `origin + i L/N`; others `N` cells of
    `[origin, origin + L]`, the points at the cell centres `origin + (i + ½) L/N`
    (or its nodes, with `vertices`).
    """

    name: str = eqx.field(static=True)
    description: str = eqx.field(static=True)
    num_spatial_dims: int = eqx.field(static=True)
    make_stepper: Callable = eqx.field(static=True)
    initial_condition: Callable | None = eqx.field(static=True)
    max_dt: Callable[..., float] = eqx.field(static=True)
    parameters: Mapping[str, Parameter] = eqx.field(
        static=True, converter=lambda p: MappingProxyType(dict(p))
    )
    fields: tuple[SavedField, ...] = eqx.field(static=True)
    boundary: str = eqx.field(static=True, default="periodic")
    domain_extent: float = eqx.field(static=True, default=1.0)
    num_points: int = eqx.field(static=True, default=256)
    num_steps: int = eqx.field(static=True, default=100)
    frame_interval: float = eqx.field(static=True, default=0.01)
    num_samples: int = eqx.field(static=True, default=64)
    origin: float = eqx.field(static=True, default=0.0)
    exact: Callable | None = eqx.field(static=True, default=None)
    defaults_from: str = eqx.field(static=True, default="")
    entities: str | None = eqx.field(static=True, default=None)
    num_points_range: tuple[int, int] = eqx.field(static=True, default=(8, 2**31))
    precisions: tuple[str, ...] = eqx.field(static=True, default=("float32", "float64"))
    vectorise: bool = eqx.field(static=True, default=True)
    warmup: float = eqx.field(static=True, default=0.0)
    conserved: tuple[int, ...] | None = eqx.field(static=True, default=None)
    vertices: bool = eqx.field(static=True, default=False)
    steady: bool = eqx.field(static=True, default=False)
    constant_fields: tuple[SavedField, ...] = eqx.field(static=True, default=())
    pdebench_layout: str = eqx.field(static=True, default="single")

    def __check_init__(self):
        if self.initial_condition is None and self.exact is None:
            raise ValueError(
                f"Scenario {self.name!r} needs an initial_condition or an exact "
                "solution to start from."
            )
        channels = sorted(c for f in self.fields for c in f.channels)
        if channels != list(range(len(channels))):
            raise ValueError(
                f"Scenario {self.name!r}: fields must cover channels once."
            )
        if self.boundary not in ("periodic", "wall", "open"):
            raise ValueError(f"Unknown boundary type {self.boundary!r}.")
        if self.steady != bool(self.constant_fields):
            raise ValueError(
                f"Scenario {self.name!r}: a steady scenario stores its inputs as "
                "constant_fields, and only a steady one has them."
            )
        if self.steady and self.initial_condition is None:
            raise ValueError(
                f"Scenario {self.name!r} is steady: its initial_condition draws the "
                "inputs."
            )
        channels = sorted(c for f in self.constant_fields for c in f.channels)
        if channels != list(range(len(channels))):
            raise ValueError(
                f"Scenario {self.name!r}: constant_fields must cover channels once."
            )
        if self.conserved is not None and not set(self.conserved) <= set(
            range(self.num_channels)
        ):
            raise ValueError(
                f"Scenario {self.name!r}: conserved channels {self.conserved} are "
                f"not among its {self.num_channels}."
            )
        if self.pdebench_layout not in ("single", "per-sample"):
            raise ValueError(f"Unknown pdebench_layout {self.pdebench_layout!r}.")
        for f in self.fields + self.constant_fields:
            if len(f.channels) != self.num_spatial_dims**f.tensor_order:
                raise ValueError(
                    f"Scenario {self.name!r}: field {f.name!r} of tensor order "
                    f"{f.tensor_order} needs {self.num_spatial_dims**f.tensor_order} "
                    f"channels, got {len(f.channels)}."
                )

    @property
    def grid_type(self) -> str:
        """The files' `@grid_type`: The Well's `cartesian`, or `entities` (ours)."""
        return "cartesian" if self.entities is None else "entities"

    def space_shape(self, num_points: int) -> tuple[int, ...]:
        """The shape of one frame of a scalar field: the grid, or the entity axis."""
        if self.entities is not None:
            return (num_points,)
        return (num_points,) * self.num_spatial_dims

    def require_grid(self, action: str) -> None:
        """Refuse `action` (for example "FNO training") on per-entity data."""
        if self.entities is not None:
            raise ValueError(
                f"Scenario {self.name!r} stores per-{self.entities} data (an "
                f"entity axis, no grid); {action} needs data on a grid."
            )

    def to_field(self, field: SavedField, channels):
        """`(T, D**k, *space)` channels of `field` → `(T, *space[, D]*k)`."""
        data = jnp.moveaxis(channels, 1, -1)
        d = self.num_spatial_dims
        return data.reshape(data.shape[:-1] + (d,) * field.tensor_order)

    def coordinates(self, num_points: int, domain_extent: float | None = None):
        """The grid points along each axis (NumPy, float64); for per-entity data
        the entity indices."""
        if self.entities is not None:
            return np.arange(num_points, dtype=np.float64)
        length = self.domain_extent if domain_extent is None else domain_extent
        if self.vertices:
            return self.origin + np.linspace(0.0, length, num_points)
        periodic = self.boundary == "periodic"
        return self.origin + cell_centres(num_points, length, periodic)

    def check_compatible(self, name: str, data: "Scenario") -> None:
        """A model `name` built for this scenario must see as many spatial
        dimensions and channels in the scenario `data` of a dataset."""
        a, b = self, data
        if (a.num_spatial_dims, a.num_channels) != (b.num_spatial_dims, b.num_channels):
            raise ValueError(
                f"Model {name!r} is for {a.num_spatial_dims}D states with "
                f"{a.num_channels} channels; the dataset ({b.name}) is "
                f"{b.num_spatial_dims}D with {b.num_channels}."
            )

    @staticmethod
    def rollout(stepper, u0, num_steps: int, *, save_every: int = 1):
        """A trajectory of one of the scenario's steppers whose first frame is the
        dataset's `t = 0` (an `AbstractStepper`'s time starts there, read by
        time-dependent boundary data); NaN/inf are left to the caller. Generation
        and the solver baselines of evaluation both roll out through here."""
        return rollout(stepper, u0, num_steps, save_every=save_every, throw=False)

    @property
    def num_channels(self) -> int:
        return sum(len(f.channels) for f in self.fields)

    @property
    def num_constant_channels(self) -> int:
        """Channels of the inputs of a steady scenario (0 for the others)."""
        return sum(len(f.channels) for f in self.constant_fields)

    @property
    def conserved_channels(self) -> tuple[int, ...]:
        """`conserved`, with `None` read as every channel."""
        if self.conserved is None:
            return tuple(range(self.num_channels))
        return tuple(self.conserved)

    @property
    def channel_names(self) -> list[str]:
        """One name per state channel, in channel order: a scalar field's name, a
        vector field's components `name_x`, `name_y`, ... (The Well's names)."""
        return self._names(self.fields, self.num_channels)

    @property
    def constant_channel_names(self) -> list[str]:
        """As `channel_names`, for the constant fields of a steady scenario."""
        return self._names(self.constant_fields, self.num_constant_channels)

    def _names(self, fields, count) -> list[str]:
        names = [""] * count
        axes = "xyz"[: self.num_spatial_dims]
        for f in fields:
            suffixes = [
                "".join(a) for a in itertools.product(axes, repeat=f.tensor_order)
            ]
            for suffix, c in zip(suffixes, f.channels, strict=True):
                names[c] = f"{f.name}_{suffix}" if suffix else f.name
        return names

    def summary(self) -> dict:
        """Everything `diffphys scenarios` shows (JSON-able): description, fields,
        parameters with defaults and admissible ranges, grid and horizon defaults,
        and where the defaults come from."""
        parameters = {}
        for name, p in self.parameters.items():
            parameters[name] = {
                "default": str(p.default),
                "admissible": p.admissible,
                "description": p.description,
                **({"pdebench_name": p.pdebench_name} if p.pdebench_name else {}),
            }
        return {
            "name": self.name,
            "description": self.description,
            "num_spatial_dims": self.num_spatial_dims,
            "fields": {
                f.name: ("scalar", "vector", "tensor")[f.tensor_order]
                for f in self.fields
            },
            **(
                {
                    "steady": True,
                    "constant_fields": {
                        f.name: ("scalar", "vector", "tensor")[f.tensor_order]
                        for f in self.constant_fields
                    },
                }
                if self.steady
                else {}
            ),
            **({"entities": self.entities} if self.entities else {}),
            "parameters": parameters,
            "defaults": {
                "domain": [self.origin, self.origin + self.domain_extent],
                "num_points": self.num_points,
                "num_steps": self.num_steps,
                "frame_interval": self.frame_interval,
                "num_samples": self.num_samples,
            },
            "boundary": self.boundary,
            "exact_solution": self.exact is not None,
            "defaults_from": self.defaults_from or "not stated",
            "module": scenario_module(self.name),
        }

    def sampler(self, name: str, spec=None) -> AbstractSampler:
        """The sampler of parameter `name` from a spec (or the default), checked."""
        if name not in self.parameters:
            known = ", ".join(self.parameters) or "none"
            raise ValueError(
                f"Scenario {self.name!r} has no parameter {name!r}; its parameters: "
                f"{known}."
            )
        parameter = self.parameters[name]
        sampler = parse_sampler(parameter.default if spec is None else spec)
        parameter.check(name, sampler)
        return sampler


_REGISTRY: dict[str, Scenario] = {}
# The module that registered each scenario, for scenarios from outside diffphys: a
# dataset records it, so later commands import it (see `load_plugins`).
_MODULES: dict[str, str] = {}
PLUGIN_GROUP = "diffphys.scenarios"
_entry_points_loaded = False


def register_scenario(scenario: Scenario, *, replace: bool = False) -> Scenario:
    """Add `scenario` to the registry under `scenario.name` (used by `diffphys
    generate NAME`). Refuses to shadow an existing name unless `replace=True`.

    For the command line to see a scenario of yours, register it at the import of
    a module (not a script or notebook) and either pass `diffphys --plugin
    your.module ...` or declare the module in the entry-point group
    `diffphys.scenarios` of your package; a dataset records the module, so later
    commands on it import it by themselves."""
    if scenario.name in _REGISTRY and not replace:
        raise ValueError(
            f"A scenario named {scenario.name!r} is already registered; pass "
            "replace=True to override it."
        )
    _REGISTRY[scenario.name] = scenario
    module = _registering_module()
    if module is None:
        _MODULES.pop(scenario.name, None)
    else:
        _MODULES[scenario.name] = module
    return scenario


# Packages whose frames may stand between a caller and `register_scenario`: runtime
# type checkers' wrappers and the import machinery.
_WRAPPERS = {"jaxtyping", "beartype", "typeguard", "importlib"}


def _registering_module() -> str | None:
    """The module calling `register_scenario` (past the wrappers a type checker may
    add around it); None for diffphys itself and for scripts and notebooks
    (`__main__`), which no later process can import."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "__main__")
        ours = name == __name__ and frame.f_code.co_name == "register_scenario"
        package = name.split(".")[0]
        if not ours and package not in _WRAPPERS:
            return None if package in ("__main__", "diffphys") else name
        frame = frame.f_back
    return None


def scenario_module(name: str) -> str | None:
    """The importable module that registered scenario `name`, or None for the
    built-in ones and those registered by a script or notebook."""
    return _MODULES.get(name)


def load_plugins(*modules: str) -> None:
    """Import scenario modules: each of `modules` (as `diffphys --plugin`), and the
    entry points of the group `diffphys.scenarios` of installed packages (once; an
    entry point naming a function is called). A module that cannot be imported is
    a `ValueError` that names it."""
    global _entry_points_loaded
    for module in modules:
        _import_plugin(module)
    if not _entry_points_loaded:
        _entry_points_loaded = True
        for entry in importlib.metadata.entry_points(group=PLUGIN_GROUP):
            try:
                loaded = entry.load()
            except Exception as e:
                raise ValueError(
                    f"Scenario plugin {entry.name!r} ({entry.value}) fails to load: "
                    f"{type(e).__name__}: {e}"
                ) from e
            if callable(loaded):
                loaded()


def import_recorded(name: str, module: str | None) -> None:
    """Import `module`, which a dataset recorded as the definer of its scenario
    `name`, unless `name` is registered already."""
    if module and name not in _REGISTRY:
        _import_plugin(module)


def _import_plugin(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as e:
        raise ValueError(
            f"Cannot import the scenario module {module!r} ({e}); install it or put "
            "its folder on PYTHONPATH."
        ) from e


def get_scenario(name: str) -> Scenario:
    """The registered scenario `name` (installed plugins are loaded first when the
    name is unknown); the error lists the known ones."""
    if name not in _REGISTRY:
        load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"Unknown scenario {name!r}; choose from: {', '.join(sorted(_REGISTRY))} "
            "(`diffphys scenarios` lists them; a scenario of yours needs `diffphys "
            "--plugin MODULE`)."
        ) from None


def list_scenarios() -> Mapping[str, Scenario]:
    """All registered scenarios, installed plugins' included, by name
    (read-only)."""
    load_plugins()
    return MappingProxyType(_REGISTRY)


# ---------------------------------------------------------------------------------
# Burgers. PDEBench's 1D recipe: sums of two random sines (|u0| <= 2) on [0, 1),
# 1024 points, 201 frames 0.01 apart. Here ν is the true coefficient of u_xx (the
# PDEBench files name it `Nu` and carry ν = ε/π).

_SINES = SineSum(num_waves=2, max_wavenumber=4)
_SINE_BOUND = 2.0  # |Σ_i a_i sin(.)| <= num_waves with a_i <= 1; Burgers keeps max|u|
_VISCOSITY = "kinematic viscosity ν of u_t + (u²/2)_x = ν u_xx"
_PDEBENCH_BURGERS = (
    "PDEBench's 1D Burgers recipe (Takamoto et al., 2022): [0, 1), 1024 points, "
    "201 frames 0.01 apart, sums of two random sines"
)


def _spectral_max_dt(domain_extent, num_points, *, max_speed, **_):
    # Courant number 1, half the hard guard of BurgersSpectral; ETDRK integrates the
    # diffusion exactly, so ν sets no limit.
    return domain_extent / num_points / max_speed


register_scenario(
    Scenario(
        name="burgers",
        description="1D viscous Burgers, pseudo-spectral ETDRK2, PDEBench-style "
        "sine-sum initial data",
        num_spatial_dims=1,
        make_stepper=lambda L, N, dt, *, nu: BurgersSpectral(
            1, L, N, dt, viscosity=nu, order=2, max_speed=_SINE_BOUND
        ),
        initial_condition=_SINES,
        max_dt=lambda L, N, **_: _spectral_max_dt(L, N, max_speed=_SINE_BOUND),
        parameters={
            "nu": Parameter(
                "0.01",
                0.0,
                low_open=True,
                description=_VISCOSITY,
                pdebench_name="Nu",
                pdebench_scale=math.pi,
            )
        },
        fields=(SavedField("u", 0, (0,)),),
        num_points=1024,
        num_steps=200,
        frame_interval=0.01,
        conserved=(0,),
        defaults_from=_PDEBENCH_BURGERS + "; ν = 0.01 (PDEBench's Nu = π·0.01)",
    )
)


def _fv_max_dt(L, N, *, nu):
    dx = L / N
    # 90 % of BurgersFV's SSP limit max_speed dt/dx + 2 ν dt/dx² <= 0.5.
    return 0.9 * 0.5 / (_SINE_BOUND / dx + 2 * nu / dx**2)


register_scenario(
    Scenario(
        name="burgers-fv",
        description="1D viscous or inviscid Burgers, MUSCL finite volumes with "
        "SSP-RK3 (sharp shocks), PDEBench-style sine-sum initial data",
        num_spatial_dims=1,
        make_stepper=lambda L, N, dt, *, nu: BurgersFV(
            1, L, N, dt, viscosity=nu, max_speed=_SINE_BOUND
        ),
        initial_condition=_SINES,
        max_dt=_fv_max_dt,
        parameters={
            "nu": Parameter(
                "0.001",
                0.0,
                description=_VISCOSITY + " (0 = inviscid)",
                pdebench_name="Nu",
                pdebench_scale=math.pi,
            )
        },
        fields=(SavedField("u", 0, (0,)),),
        num_points=1024,
        num_steps=200,
        frame_interval=0.01,
        conserved=(0,),
        defaults_from=_PDEBENCH_BURGERS + "; ν = 0.001 (PDEBench's Nu = π·0.001)",
    )
)


class _VectorField:
    """Independent random truncated Fourier series in each of `d` channels, each
    scaled to max 1 (so |u| <= sqrt(d))."""

    def __init__(self, num_spatial_dims: int, cutoff: int):
        self.num_spatial_dims = num_spatial_dims
        self.scalar = RandomTruncatedFourier(num_spatial_dims, cutoff=cutoff)

    def __call__(self, num_points, *, key):
        keys = jr.split(key, self.num_spatial_dims)
        return jnp.concatenate([self.scalar(num_points, key=k) for k in keys])


register_scenario(
    Scenario(
        name="burgers-2d",
        description="2D vector viscous Burgers, pseudo-spectral ETDRK2, random "
        "truncated Fourier initial velocity",
        num_spatial_dims=2,
        make_stepper=lambda L, N, dt, *, nu: BurgersSpectral(
            2, L, N, dt, viscosity=nu, order=2, max_speed=math.sqrt(2)
        ),
        initial_condition=_VectorField(2, cutoff=4),
        max_dt=lambda L, N, **_: _spectral_max_dt(L, N, max_speed=2.0),
        parameters={
            "nu": Parameter(
                "0.005",
                0.0,
                low_open=True,
                description="kinematic viscosity ν of u_t + (u·∇)u = ν Δu",
            )
        },
        fields=(SavedField("velocity", 1, (0, 1)),),
        num_points=64,
        num_steps=50,
        frame_interval=0.02,
        # (u·∇)u integrates to −∫u ∇·u: the momentum of a compressible field is
        # not conserved.
        conserved=(),
        defaults_from="diffphys's choice (no benchmark has this recipe)",
    )
)


# ---------------------------------------------------------------------------------
# The ProbConserv instances (Hansen et al., ICML 2023, appendix): domains,
# boundary data and parameter ranges of its data generator. Each has a closed form
# (`source="exact"`) and a solver.


def _probconserv(name, description, make_stepper, exact, parameters, **options):
    """Register one instance: 1D, 128 cells, 100 frames, field `u`, open ends
    unless `options` say otherwise; `exact(x, t, **params)` is its closed form."""

    def field(x, t, **params):
        return exact(x, t, **params)[None]

    defaults = dict(
        defaults_from="domain, boundary data and parameter range: ProbConserv "
        "(Hansen et al., ICML 2023, appendix); grid and frames: diffphys's choice",
        boundary="open",
        max_dt=_implicit_max_dt,
        num_points=128,
        num_steps=100,
        frame_interval=0.01,
        conserved=(0,),
    )
    register_scenario(
        Scenario(
            name=name,
            description=description,
            num_spatial_dims=1,
            make_stepper=make_stepper,
            initial_condition=None,
            exact=field,
            parameters=parameters,
            fields=(SavedField("u", 0, (0,)),),
            **(defaults | options),
        )
    )


def _implicit_max_dt(L, N, **_):
    # Implicit: no stability limit; for accuracy a front at unit speed crosses at
    # most one cell per step.
    return L / N


def _hyperbolic_max_dt(L, N, *, a):
    return 0.9 * 0.5 * (L / N) / a


_probconserv(
    "heat",
    "1D heat equation u_t = k u_xx from sin x on the periodic [0, 2π) (ProbConserv "
    "'easy'); finite volumes, Crank–Nicolson",
    lambda L, N, dt, *, k: PorousMedium(
        1, L, N, dt, diffusivity=Constant(k), theta=0.5
    ),
    gpme.heat,
    {"k": Parameter("1:5", 0.0, low_open=True, description="diffusivity k")},
    boundary="periodic",
    domain_extent=2 * math.pi,
)

_probconserv(
    "pme",
    "1D porous medium equation u_t = (u^m u_x)_x on [0, 1], inflow u(0, t) = "
    "(m t)^(1/m), a unit-speed front (ProbConserv 'medium'); finite volumes, "
    "backward Euler",
    lambda L, N, dt, *, m: PorousMedium(
        1,
        L,
        N,
        dt,
        diffusivity=PowerLaw(m),
        left=Dirichlet(lambda t: gpme.pme_inflow(t, m=m)),
        right=Dirichlet(0.0),
    ),
    gpme.pme,
    {"m": Parameter("1:6", 0.0, low_open=True, description="exponent m of k = u^m")},
)

_probconserv(
    "stefan",
    "1D one-phase Stefan problem, k = 1[u >= u*] on [0, 1], u(0, t) = 1: a front "
    "α√t where u jumps from u* to 0 (ProbConserv 'hard'); finite volumes, backward "
    "Euler",
    lambda L, N, dt, *, u_star: PorousMedium(
        1,
        L,
        N,
        dt,
        diffusivity=Stefan(u_star),
        left=Dirichlet(1.0),
        right=Dirichlet(0.0),
    ),
    gpme.stefan,
    {
        "u_star": Parameter(
            "0.55:0.7", 0.0, 1.0, low_open=True, description="melting threshold u*"
        )
    },
    frame_interval=0.001,
)

_probconserv(
    "advection",
    "1D linear advection u_t + a u_x = 0 of a step on [0, 1], inflow u(0, t) = 1 "
    "(ProbConserv, hyperbolic); MUSCL finite volumes, SSP-RK3",
    lambda L, N, dt, *, a: ConservationLaw(
        1,
        L,
        N,
        dt,
        flux="advection",
        velocity=a,
        left=Dirichlet(1.0),
        right=Outflow(),
        max_speed=None,  # dt from the largest a drawn (max_dt)
    ),
    hyperbolic.advection,
    {"a": Parameter("1:5", 0.0, 5.0, low_open=True, description="velocity a")},
    max_dt=_hyperbolic_max_dt,
)

_probconserv(
    "burgers-riemann",
    "1D inviscid Burgers on [-1, 1] from a compression ramp with inflow u(-1, t) = "
    "a: a shock from t = 1/a (ProbConserv, hyperbolic); MUSCL finite volumes, "
    "SSP-RK3",
    lambda L, N, dt, *, a: ConservationLaw(
        1,
        L,
        N,
        dt,
        flux="burgers",
        left=Dirichlet(a),
        right=Outflow(),
        max_speed=None,
    ),
    hyperbolic.burgers_ramp,
    {"a": Parameter("1:4", 0.0, 4.0, low_open=True, description="inflow state a")},
    max_dt=_hyperbolic_max_dt,
    domain_extent=2.0,
    origin=-1.0,
)
