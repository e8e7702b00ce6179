"""The `diffphys` command: `diffphys --help` lists the subcommands.

Every subcommand writes files, shows a progress bar on long work (quiet when not a
terminal or with `--quiet`) and turns bad input into one line on stderr with a
non-zero exit code.
"""

from ._app import app as app, main as main
