"""The page's pictures as geometry for inline SVG (templates/_charts.html draws them): bars of
files confirmed per slot, a line of the lag or the free space. Drawn on the server: no
JavaScript chart library, nothing to vendor or keep up to date, and the picture is there before
any script runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

WIDTH, HEIGHT = 300.0, 80.0  # the viewBox; CSS scales it to the card
TOP = 4.0  # room above the highest bar or point


class Bar(NamedTuple):
    x: float
    y: float
    w: float
    h: float
    title: str  # the tooltip: the slot and its value


class Chart(NamedTuple):
    title: str  # what it shows, with the largest value
    bars: list[Bar]
    points: str  # a polyline's points ("x,y x,y"); empty for a bar chart
    dots: list[Bar]  # for a line: each point, with its tooltip
    start: str  # the label at the left end
    end: str  # and at the right end
    empty: bool  # nothing to draw: say so instead


def bars(
    title: str,
    values: Sequence[float],
    tips: Sequence[str],
    fmt: Callable[[float], str],
    start: str,
    end: str,
) -> Chart:
    """One bar per slot (a slot with nothing: no bar), scaled to the largest; ``tips``: each
    slot's tooltip."""
    top = max(values, default=0)
    step = WIDTH / max(1, len(values))
    out = []
    for i, v in enumerate(values):
        h = (HEIGHT - TOP) * v / top if top else 0.0
        if v and h < 1:
            h = 1.0  # a slot with something shows, however small
        out.append(
            Bar(
                round(i * step + 1, 1),
                round(HEIGHT - h, 1),
                round(step - 2, 1),
                round(h, 1),
                tips[i],
            )
        )
    return Chart(f"{title} (most {fmt(top)})", out, "", [], start, end, not top)


def line(
    title: str,
    samples: Sequence[tuple[float, float]],
    since: float,
    until: float,
    fmt: Callable[[float], str],
    label: Callable[[float], str],
    start: str,
    end: str,
) -> Chart:
    """A line through (time, value) samples between ``since`` and ``until``, from 0 up to
    the largest value."""
    if not samples:
        return Chart(title, [], "", [], start, end, True)
    most = max(v for _, v in samples)
    top = most or 1.0
    span = max(1.0, until - since)
    pts, dots = [], []
    if samples[-1][0] < until:  # the last value holds until now (one sample: a flat line)
        samples = [*samples, (until, samples[-1][1])]
    for at, v in samples:
        x = round(WIDTH * (at - since) / span, 1)
        y = round(HEIGHT - (HEIGHT - TOP) * v / top, 1)
        pts.append(f"{x},{y}")
        dots.append(Bar(x, y, 0, 0, f"{label(at)}: {fmt(v)}"))
    if len(dots) > 200:  # tooltips for a readable few only
        dots = dots[:: len(dots) // 100 + 1]
    return Chart(f"{title} (most {fmt(most)})", [], " ".join(pts), dots, start, end, False)


def thin(
    samples: list[tuple[float, float]], since: float, until: float, n: int
) -> list[tuple[float, float]]:
    """At most ``n`` samples: the largest of each of ``n`` equal spans (a peak stays seen)."""
    if len(samples) <= n:
        return samples
    span = (until - since) / n
    best: dict[int, tuple[float, float]] = {}
    for at, v in samples:
        slot = int((at - since) / span)
        if slot not in best or v > best[slot][1]:
            best[slot] = (at, v)
    return [best[k] for k in sorted(best)]
