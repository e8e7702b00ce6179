import os
import sys


def progress_bar(title: str, *text: str, enabled: bool | None = None):
    """A rich progress bar `title [bar] done/total <text columns> elapsed remaining`.
    Off when `enabled` is False, or when None and stderr is no TTY or `CI` is set."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if enabled is None:
        enabled = sys.stderr.isatty() and not os.environ.get("CI")
    return Progress(
        TextColumn(f"[bold]{title}"),
        BarColumn(),
        MofNCompleteColumn(),
        *(TextColumn(t) for t in text),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
    )
