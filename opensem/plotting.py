"""Figures drawn on matplotlib's Agg canvas, one at a time in a process.

matplotlib's text layout (its mathtext parser and font caches) is not safe to use from two
threads at once, and under `opensem build -j N` two stages may draw their reports together: they
take turns here. No pyplot, so no global figure state either.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_DRAWING = threading.Lock()


@contextlib.contextmanager
def agg_figure(**options: Any) -> Iterator[Any]:
    """A matplotlib Figure with an Agg canvas, held for this thread until the block ends (save it inside)."""
    with _DRAWING:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(**options)
        FigureCanvasAgg(figure)
        yield figure
