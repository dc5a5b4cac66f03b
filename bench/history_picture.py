"""The README's picture: a sensor's history across three outages, the remote's beside the mirror's.

Drawn (Pillow, no chart library) from what `tests/e2e_ha/test_mirror_history_e2e.py` read at its
end and wrote to `bench/results/ha_25_history.json`: the remote's own recorded history of the
sensor (its `history/history_during_period`) and the mirror's rows in the LOCAL recorder's
`states` table, with the three outages (a network cut, a graceful stop, a SIGKILL) shaded.

    HA_INGESTION_TEST_PORTS=10000-11999 scripts/run python -m pytest -p no:cacheprovider \
        tests/e2e_ha/test_mirror_history_e2e.py -k sqlite
    scripts/run python -m bench.history_picture      # writes docs/images/history-outage.png
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "results" / "ha_25_history.json"
OUT = ROOT / "docs" / "images" / "history-outage.png"

WIDTH, PANEL, TOP, GAP, LEFT, RIGHT, BOTTOM = 1100, 230, 40, 60, 70, 20, 50
LINE = (3, 169, 244)  # Home Assistant's history blue
UNAVAILABLE = (189, 189, 189)
OUTAGE = (255, 235, 205)
TEXT = (33, 33, 33)
GRID = (224, 224, 224)


def _series(rows: list[list[object]]) -> list[tuple[float, str]]:
    return [(float(ts), str(state)) for state, ts in rows]  # type: ignore[arg-type]


def draw(data: dict[str, object], out: Path = OUT) -> Path:
    """Two panels (remote, mirror) on one time axis; outages shaded; `unavailable` in grey."""
    remote = _series(data["remote"])  # type: ignore[arg-type]
    mirror = _series(data["mirror"])  # type: ignore[arg-type]
    outages = [(str(w), float(a), float(b)) for w, a, b in data["outages"]]  # type: ignore[union-attr]
    start = min(ts for ts, _ in remote + mirror)
    end = max(ts for ts, _ in remote + mirror) + 2.0
    values = [float(s) for _, s in remote + mirror if s.replace(".", "", 1).isdigit()]
    low, high = min(values), max(values)
    height = TOP + 2 * PANEL + GAP + BOTTOM
    image = Image.new("RGB", (WIDTH, height), "white")
    pen = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)

    def x(ts: float) -> float:
        return LEFT + (ts - start) / (end - start) * (WIDTH - LEFT - RIGHT)

    panels = [
        ("Remote: its own recorded history of sensor.e2e_history_power", remote),
        ("Mirror: this instance's recorded history (local recorder), after recovery", mirror),
    ]
    for index, (title, series) in enumerate(panels):
        top = TOP + index * (PANEL + GAP)
        bottom = top + PANEL

        def y(value: float, top: int = top, bottom: int = bottom) -> float:
            return bottom - (value - low) / (high - low) * (bottom - top - 10) - 5

        for what, a, b in outages:
            pen.rectangle((x(a), top, x(b), bottom), fill=OUTAGE)
            pen.text((x(a) + 3, top + 3), what, fill=TEXT, font=font)
        for tick in range(0, int(high) + 1, 50):
            pen.line((LEFT, y(tick), WIDTH - RIGHT, y(tick)), fill=GRID)
            pen.text((8, y(tick) - 8), f"{tick} W", fill=TEXT, font=font)
        pen.rectangle((LEFT, top, WIDTH - RIGHT, bottom), outline=TEXT)
        pen.text((LEFT, top - 20), title, fill=TEXT, font=font)
        for (ts, state), (next_ts, _) in zip(series, [*series[1:], (end, "")], strict=True):
            if not state.replace(".", "", 1).isdigit():
                pen.rectangle((x(ts), top + 1, x(next_ts), bottom - 1), fill=UNAVAILABLE)
                continue
            pen.line((x(ts), y(float(state)), x(next_ts), y(float(state))), fill=LINE, width=3)
            if next_ts < end and series[-1][0] != ts:
                following = next(s for t, s in series if t == next_ts)
                if following.replace(".", "", 1).isdigit():
                    pen.line(
                        (x(next_ts), y(float(state)), x(next_ts), y(float(following))),
                        fill=LINE,
                        width=3,
                    )
    axis = TOP + 2 * PANEL + GAP + 5
    for second in range(0, int(end - start) + 1, 10):
        pen.text((x(start + second) - 8, axis), f"{second} s", fill=TEXT, font=font)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, format="PNG", optimize=True)
    return out


if __name__ == "__main__":
    print(draw(json.loads(DATA.read_text(encoding="utf-8"))))
