"""The loss-curve PNG of a training run, drawn with Pillow.

matplotlib would take more time to import than a short training run takes to save its adapter
(about 0.6 s of a 10 s stage on a small CPU), for one line chart. Pillow (already installed as a
matplotlib dependency) imports in milliseconds and writes the same chart: loss over steps, the
learning rate dashed on its own axis, ticks, labels and a title. No timestamp goes into the file,
so equal metrics give equal bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 70, 80, 36, 48  # margins around the plot area
LOSS_COLOR, RATE_COLOR, GRID, INK = (31, 119, 180), (128, 128, 128), (225, 225, 225), (40, 40, 40)
EVAL_COLOR = (214, 95, 14)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0]
    if high <= low:
        high = low + (abs(low) or 1.0) * 0.1
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]
    return [round(t, 12) for t in ticks]


def _label(value: float) -> str:
    if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4):
        return f"{value:.0e}"
    return f"{value:g}"


def plot_loss(rows: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """Training loss, validation loss when measured (squares), and the learning rate (dashed, right
    axis) over steps, as a PNG at path."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=12)
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    losses = [(float(r["step"]), float(r["loss"])) for r in rows if r.get("loss") is not None]
    rates = [
        (float(r["step"]), float(r["learning_rate"]))
        for r in rows
        if r.get("learning_rate") is not None
    ]
    evals = [
        (float(r["step"]), float(r["eval_loss"])) for r in rows if r.get("eval_loss") is not None
    ]
    steps = [s for s, _ in losses + evals] or [0.0, 1.0]
    x_ticks = nice_ticks(min(steps), max(steps))
    y_ticks = nice_ticks(
        min((v for _, v in losses + evals), default=0.0),
        max((v for _, v in losses + evals), default=1.0),
    )

    def scale(value: float, ticks: list[float], start: float, end: float) -> float:
        span = ticks[-1] - ticks[0] or 1.0
        return start + (value - ticks[0]) / span * (end - start)

    for tick in x_ticks:
        x = scale(tick, x_ticks, x0, x1)
        draw.line([(x, y0), (x, y1)], fill=GRID)
        draw.text((x, y1 + 6), _label(tick), fill=INK, font=font, anchor="ma")
    for tick in y_ticks:
        y = scale(tick, y_ticks, y1, y0)
        draw.line([(x0, y), (x1, y)], fill=GRID)
        draw.text((x0 - 6, y), _label(tick), fill=INK, font=font, anchor="rm")
    if len(rates) > 1:
        r_ticks = nice_ticks(min(v for _, v in rates), max(v for _, v in rates))
        for tick in r_ticks:
            draw.text(
                (x1 + 6, scale(tick, r_ticks, y1, y0)),
                _label(tick),
                fill=RATE_COLOR,
                font=font,
                anchor="lm",
            )
        points = [(scale(s, x_ticks, x0, x1), scale(v, r_ticks, y1, y0)) for s, v in rates]
        for (ax, ay), (bx, by) in zip(points, points[1:]):
            _dashed(draw, ax, ay, bx, by)
        draw.text((WIDTH - 8, y0 - 14), "learning rate", fill=RATE_COLOR, font=font, anchor="rm")
    points = [(scale(s, x_ticks, x0, x1), scale(v, y_ticks, y1, y0)) for s, v in losses]
    if len(points) > 1:
        draw.line(points, fill=LOSS_COLOR, width=2, joint="curve")
    if len(points) < 30:
        for x, y in points:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=LOSS_COLOR)
    validation = [(scale(s, x_ticks, x0, x1), scale(v, y_ticks, y1, y0)) for s, v in evals]
    if len(validation) > 1:
        draw.line(validation, fill=EVAL_COLOR, width=2)
    for x, y in validation:
        draw.rectangle([x - 3, y - 3, x + 3, y + 3], fill=EVAL_COLOR)
    if validation:
        draw.text((130, y0 - 14), "validation loss", fill=EVAL_COLOR, font=font, anchor="lm")
    draw.rectangle([x0, y0, x1, y1], outline=INK)
    draw.text(((x0 + x1) / 2, HEIGHT - 8), "step", fill=INK, font=font, anchor="md")
    draw.text((8, y0 - 14), "training loss", fill=LOSS_COLOR, font=font, anchor="lm")
    draw.text(
        ((x0 + x1) / 2, 10), title, fill=INK, font=ImageFont.load_default(size=14), anchor="ma"
    )
    image.save(path, format="PNG", optimize=False)


def _dashed(draw: Any, ax: float, ay: float, bx: float, by: float, dash: float = 6.0) -> None:
    length = math.hypot(bx - ax, by - ay)
    pieces = max(1, int(length // dash))
    for i in range(0, pieces, 2):
        start, end = i / pieces, min(1.0, (i + 1) / pieces)
        draw.line(
            [
                (ax + (bx - ax) * start, ay + (by - ay) * start),
                (ax + (bx - ax) * end, ay + (by - ay) * end),
            ],
            fill=RATE_COLOR,
            width=1,
        )
