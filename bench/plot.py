"""Tiny bar-chart plotting with Pillow (no matplotlib): stacked panels sharing the time axis."""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH = 1100
PANEL_HEIGHT = 300
MARGIN_LEFT = 70
MARGIN_RIGHT = 20
MARGIN_TOP = 50
PANEL_GAP = 70
MARGIN_BOTTOM = 60


@dataclass
class Panel:
    """One panel: bars of `counts[i]` over [x0 + i*width, x0 + (i+1)*width)."""

    title: str
    x0: float
    width: float
    counts: list[int]
    color: tuple[int, int, int] = (31, 119, 180)
    # (x, label) vertical markers and (y, label) horizontal reference lines.
    vlines: list[tuple[float, str]] = field(default_factory=list)
    hlines: list[tuple[float, str]] = field(default_factory=list)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError, OSError:  # Pillow without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def _nice_step(span: float, ticks: int) -> float:
    raw = span / max(ticks, 1)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for mult in (1, 2, 5, 10):
        if raw <= mult * power:
            return mult * power
    return 10 * power


def _dashed(
    draw: ImageDraw.ImageDraw,
    a: tuple[float, float],
    b: tuple[float, float],
    color: tuple[int, int, int],
) -> None:
    (x1, y1), (x2, y2) = a, b
    length = math.hypot(x2 - x1, y2 - y1)
    steps = max(1, int(length // 6))
    for i in range(0, steps, 2):
        s, e = i / steps, min(1.0, (i + 1) / steps)
        draw.line(
            (x1 + (x2 - x1) * s, y1 + (y2 - y1) * s, x1 + (x2 - x1) * e, y1 + (y2 - y1) * e),
            fill=color,
            width=2,
        )


def _vertical_text(
    image: Image.Image,
    text: str,
    center: tuple[float, float],
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
) -> None:
    """Draw `text` rotated 90° counter-clockwise, its left edge at x, centred on y."""
    probe = ImageDraw.Draw(image)
    width = int(probe.textlength(text, font=font)) + 4
    label = Image.new("RGB", (width, 18), "white")
    ImageDraw.Draw(label).text((2, 1), text, fill="black", font=font)
    rotated = label.rotate(90, expand=True)
    image.paste(rotated, (int(center[0]), int(center[1] - rotated.height / 2)))


def bar_panels(path: Path, title: str, panels: list[Panel], x_label: str, y_label: str) -> None:
    """Draw `panels` one above the other, with a common x range, and save a PNG."""
    height = MARGIN_TOP + len(panels) * PANEL_HEIGHT + (len(panels) - 1) * PANEL_GAP + MARGIN_BOTTOM
    image = Image.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    big, small = _font(18), _font(13)
    draw.text((MARGIN_LEFT, 12), title, fill="black", font=big)

    x_min = min(p.x0 for p in panels)
    x_max = max(p.x0 + p.width * len(p.counts) for p in panels)
    x_max = max(x_max, x_min + 1)
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT

    def px(x: float) -> float:
        return MARGIN_LEFT + (x - x_min) / (x_max - x_min) * plot_w

    x_step = _nice_step(x_max - x_min, 12)
    for n, panel in enumerate(panels):
        top = MARGIN_TOP + n * (PANEL_HEIGHT + PANEL_GAP) + 20
        bottom = top + PANEL_HEIGHT - 20
        y_max = max([*panel.counts, *(y for y, _ in panel.hlines), 1]) * 1.1
        y_step = _nice_step(y_max, 5)

        def py(y: float, top: float = top, bottom: float = bottom, y_max: float = y_max) -> float:
            return bottom - y / y_max * (bottom - top)

        draw.text((MARGIN_LEFT, top - 20), panel.title, fill="black", font=small)
        # grid and y ticks
        y = 0.0
        while y <= y_max:
            draw.line((MARGIN_LEFT, py(y), WIDTH - MARGIN_RIGHT, py(y)), fill=(225, 225, 225))
            label = f"{y:g}"
            draw.text(
                (MARGIN_LEFT - 8 - draw.textlength(label, font=small), py(y) - 7),
                label,
                fill="black",
                font=small,
            )
            y += y_step
        # x ticks
        x = math.ceil(x_min / x_step) * x_step
        while x <= x_max:
            draw.line((px(x), bottom, px(x), bottom + 4), fill="black")
            label = f"{x:g}"
            draw.text(
                (px(x) - draw.textlength(label, font=small) / 2, bottom + 6),
                label,
                fill="black",
                font=small,
            )
            x += x_step
        # bars
        for i, count in enumerate(panel.counts):
            if count:
                x0 = px(panel.x0 + i * panel.width)
                x1 = max(x0 + 1, px(panel.x0 + (i + 1) * panel.width) - 1)
                draw.rectangle((x0, py(count), x1, bottom), fill=panel.color)
        # reference lines
        for y_ref, label in panel.hlines:
            _dashed(
                draw, (MARGIN_LEFT, py(y_ref)), (WIDTH - MARGIN_RIGHT, py(y_ref)), (214, 39, 40)
            )
            draw.text(
                (WIDTH - MARGIN_RIGHT - draw.textlength(label, font=small) - 4, py(y_ref) - 16),
                label,
                fill=(214, 39, 40),
                font=small,
            )
        for x_ref, label in panel.vlines:
            _dashed(draw, (px(x_ref), top), (px(x_ref), bottom), (80, 80, 80))
            draw.text((px(x_ref) + 4, top + 2), label, fill=(80, 80, 80), font=small)
        draw.rectangle((MARGIN_LEFT, top, WIDTH - MARGIN_RIGHT, bottom), outline="black")
        _vertical_text(image, y_label, (6, top + (bottom - top) / 2), small)
    draw.text(
        (MARGIN_LEFT + plot_w / 2 - draw.textlength(x_label, font=small) / 2, height - 28),
        x_label,
        fill="black",
        font=small,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
