"""Run pages: line charts of logged metrics and the logged images, from history rows.

Charts are computed here and drawn by the template as SVG polylines (no JavaScript).
Long series are reduced to the minimum and maximum of each pixel column, so a chart stays
small however many rows were logged and still shows every spike.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

WIDTH, HEIGHT = 460, 220
LEFT, RIGHT, TOP, BOTTOM = 58, 14, 12, 30
MARKERS_BELOW = 60
"""Series with at most this many points also get a dot per point."""

_SHA = re.compile(r"[0-9a-f]{64}")


@dataclass
class Chart:
    key: str
    points: str
    dots: list[tuple[float, float, str]]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    count: int
    last: float
    low: float
    high: float
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    plot_w: int = WIDTH - LEFT - RIGHT
    plot_h: int = HEIGHT - TOP - BOTTOM


@dataclass
class MediaPanel:
    key: str
    step: Any
    images: list[dict]
    logged_steps: int


@dataclass
class RunMedia:
    charts: list[Chart] = field(default_factory=list)
    panels: list[MediaPanel] = field(default_factory=list)
    image_shas: set[str] = field(default_factory=set)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _images(value: Any) -> list[dict] | None:
    """The image dicts in a history value (one image or a list of them), else None."""
    items = value if isinstance(value, list) else [value]
    if not items:
        return None
    out = []
    for item in items:
        if not (isinstance(item, dict) and item.get("_type") == "image"
                and isinstance(item.get("sha256"), str) and _SHA.fullmatch(item["sha256"])):
            return None
        out.append(item)
    return out


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high == low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks: list[float] = []
    value = first
    while value <= high + step * 1e-9 and len(ticks) < 20:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


def fmt(value: float, digits: int = 4) -> str:
    """A short number: integers as they are, others to ``digits`` significant digits."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return format(value, f".{digits}g")


def _reduce(series: list[tuple[float, float]], x_of, buckets: int) -> list[tuple[float, float]]:
    """At most ~2 points per pixel column: the first, min and max and last of each column."""
    if len(series) <= 2 * buckets:
        return series
    out: list[tuple[float, float]] = []
    column: list[tuple[float, float]] = []
    current = None
    for point in series:
        px = int(x_of(point[0]))
        if px != current and column:
            out.extend(_column_points(column))
            column = []
        current = px
        column.append(point)
    out.extend(_column_points(column))
    return out


def _column_points(column: list[tuple[float, float]]) -> list[tuple[float, float]]:
    lo = min(column, key=lambda p: p[1])
    hi = max(column, key=lambda p: p[1])
    keep = {id(column[0]): column[0], id(lo): lo, id(hi): hi, id(column[-1]): column[-1]}
    return sorted(keep.values(), key=lambda p: column.index(p))


def build_chart(key: str, series: list[tuple[float, float]]) -> Chart:
    series = sorted(series, key=lambda p: p[0])
    xs = [p[0] for p in series]
    ys = [p[1] for p in series]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    pad = (y_hi - y_lo) * 0.05 or (abs(y_hi) * 0.1 or 1.0)
    y_lo_view, y_hi_view = y_lo - pad, y_hi + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return TOP + (1 - (y - y_lo_view) / (y_hi_view - y_lo_view)) * plot_h

    reduced = _reduce(series, px, plot_w)
    points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in reduced)
    dots = ([(round(px(x), 1), round(py(y), 1), f"step {fmt(x)}: {fmt(y)}") for x, y in series]
            if len(series) <= MARKERS_BELOW else [])
    x_ticks = [(round(px(t), 1), fmt(t, 6)) for t in nice_ticks(x_lo, x_hi) if x_lo <= t <= x_hi]
    y_ticks = [(round(py(t), 1), fmt(t, 6))
               for t in nice_ticks(y_lo_view, y_hi_view) if y_lo_view <= t <= y_hi_view]
    return Chart(key=key, points=points, dots=dots, x_ticks=x_ticks, y_ticks=y_ticks, count=len(series),
                 last=series[-1][1], low=y_lo, high=y_hi)


def run_media(rows: list[dict]) -> RunMedia:
    """Charts of every numeric metric against ``_step``; the latest images of each image key."""
    series: dict[str, list[tuple[float, float]]] = {}
    panels: dict[str, MediaPanel] = {}
    shas: set[str] = set()
    for index, row in enumerate(rows):
        step = row.get("_step", index)
        if not _is_number(step):
            step = index
        for key, value in row.items():
            if key.startswith("_"):
                continue
            if _is_number(value):
                series.setdefault(key, []).append((float(step), float(value)))
                continue
            found = _images(value)
            if found:
                shas.update(i["sha256"] for i in found)
                seen = panels[key].logged_steps if key in panels else 0
                panels[key] = MediaPanel(key=key, step=row.get("_step"), images=found, logged_steps=seen + 1)
    charts = [build_chart(key, points) for key, points in sorted(series.items())]
    return RunMedia(charts=charts, panels=[panels[k] for k in sorted(panels)], image_shas=shas)
