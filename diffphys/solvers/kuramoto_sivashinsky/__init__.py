"""The Kuramoto–Sivashinsky equation on a periodic domain (1D and 2D), an instance
of the semi-linear spectral engine; `exact` holds its linear theory."""

from . import exact as exact
from ._kuramoto_sivashinsky import KuramotoSivashinsky as KuramotoSivashinsky
