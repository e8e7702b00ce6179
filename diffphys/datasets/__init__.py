"""Initial-condition generators, the PDE scenario registry, sharded generation and
The Well-format HDF5 reading and writing.

Use it as `dp.datasets`; this package is nested on purpose, so it never shadows the
HuggingFace `datasets` package. Nothing lives here yet; the dataset issue fills it.
"""
