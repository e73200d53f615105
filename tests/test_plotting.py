"""Reports drawn from several threads at once (stages under build -j) all come out whole and equal."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from opensem.curate.report import Panel, plot_histograms


def test_threads_drawing_at_once_take_turns(tmp_path: Path) -> None:
    panels = [
        Panel(
            title=f"similarity $x^{n}$",
            xlabel="$\\cos$",
            values=[0.1 * i for i in range(10)],
            threshold=0.95,
        )
        for n in range(2)
    ]

    def draw(index: int) -> bytes:
        path = tmp_path / f"{index}.png"
        plot_histograms(panels, path)
        return path.read_bytes()

    with ThreadPoolExecutor(max_workers=4) as pool:
        drawn = list(pool.map(draw, range(8)))
    assert len(set(drawn)) == 1 and drawn[0].startswith(b"\x89PNG")
