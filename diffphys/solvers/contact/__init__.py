"""Rigid-body contact dynamics: Dojo-style interior-point time steps with hard
non-penetration and second-order-cone Coulomb friction, differentiable by the
implicit function theorem (`ContactStepper`, `simulate`)."""

from ._bodies import Box as Box, Plane as Plane, Sphere as Sphere
from ._ipm import InteriorPoint as InteriorPoint, soc_step as soc_step
from ._quaternion import (
    from_axis_angle as from_axis_angle,
    from_rotation_matrix as from_rotation_matrix,
    rotation_matrix as rotation_matrix,
)
from ._scene import Contacts as Contacts, Scene as Scene, State as State
from ._stepper import (
    ContactStepper as ContactStepper,
    simulate as simulate,
    Status as Status,
)
