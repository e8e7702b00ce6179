import contextlib
import os
import sys
import time


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


@contextlib.contextmanager
def tracker(
    title: str,
    unit: str,
    total: int,
    done: int,
    enabled: bool | None,
    *,
    fields: tuple[str, ...] = (),
):
    """The progress of a long job (generation, training): yields
    `advance(n=0, **values)`, which moves the bar `n` units on, shows the rate of
    this run's units per second, and sets the named text `fields`."""
    text = [f"{unit} {{task.fields[rate]}}"]
    text += [f"{name} {{task.fields[{name}]}}" for name in fields]
    progress = progress_bar(title, *text, enabled=enabled)
    start, fresh = time.perf_counter(), [0]
    with progress:
        task = progress.add_task(
            "", total=total, completed=done, rate="", **dict.fromkeys(fields, "-")
        )

        def advance(n: int = 0, **values):
            fresh[0] += n
            rate = fresh[0] / max(time.perf_counter() - start, 1e-9)
            progress.update(task, advance=n, rate=f"{rate:.1f}/s", **values)

        yield advance
