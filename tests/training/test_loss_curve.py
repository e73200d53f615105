"""The loss-curve PNG: readable ticks, stable bytes, and no trouble with short or empty logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensem.training.loss_curve import LOSS_COLOR, RATE_COLOR, nice_ticks, plot_loss

ROWS = [
    {"step": s, "loss": 7.5 - s / 30, "learning_rate": 3e-3 * (1 - s / 60), "grad_norm": 0.4}
    for s in [1, *range(5, 61, 5)]
]


def test_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(1, 60) == [0, 20, 40, 60]
    assert nice_ticks(5.52, 7.47) == [5.5, 6.0, 6.5, 7.0, 7.5]
    assert nice_ticks(0.0, 0.003) == [0.0, 0.001, 0.002, 0.003]
    ticks = nice_ticks(2.0, 2.0)  # a flat curve still gets an axis
    assert ticks[0] <= 2.0 <= ticks[-1] and len(ticks) >= 2


def test_the_png_is_deterministic_and_sized(tmp_path: Path) -> None:
    from PIL import Image

    plot_loss(ROWS, tmp_path / "a.png", "lora, 116 records")
    plot_loss(ROWS, tmp_path / "b.png", "lora, 116 records")
    data = (tmp_path / "a.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data == (tmp_path / "b.png").read_bytes()
    with Image.open(tmp_path / "a.png") as image:
        assert image.size == (640, 360)
        colors = dict((color, count) for count, color in image.getcolors(maxcolors=1 << 16))
    assert colors.get(LOSS_COLOR, 0) > 300  # the loss line and its markers
    assert colors.get(RATE_COLOR, 0) > 50  # the dashed learning rate and its axis labels
    plot_loss(
        [{**row, "loss": row["loss"] + 1} for row in ROWS], tmp_path / "c.png", "lora, 116 records"
    )
    assert (tmp_path / "c.png").read_bytes() != data


@pytest.mark.parametrize(
    "rows", [[], [{"step": 1, "loss": 2.0, "learning_rate": None}], [{"step": 3, "loss": None}]]
)
def test_short_logs_still_draw(tmp_path: Path, rows: list[dict[str, object]]) -> None:
    plot_loss(rows, tmp_path / "x.png", "empty")
    assert (tmp_path / "x.png").read_bytes()[:4] == b"\x89PNG"
