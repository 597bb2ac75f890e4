"""The chart of ``shuffle_quality.py``: quality and I/O cost against window size, drawn
with Pillow (no matplotlib): per dataset, label mix and position correlation on top, bytes
read ahead per window below, the window on a log2 axis."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1500, 1140
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 100, 40, 90, 105
GAP_X, GAP_Y = 110, 175
BLUE, ORANGE, GREEN, PURPLE = "#1f5fa8", "#d9720b", "#2a8a3e", "#8e3fb0"
GREY, BLACK = "#9a9a9a", "#222222"


def draw(datasets: Sequence[tuple[str, list[dict], list[dict]]], out: str) -> None:
    """Two rows of panels, a column per dataset: (name, reports by window, and reports by
    window of the same dataset stored in random order, or an empty list)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    canvas = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=17)
    small = ImageFont.load_default(size=15)
    title = ImageFont.load_default(size=22)
    canvas.text(
        (WIDTH / 2, 18),
        "Chunk-window shuffle: quality and I/O cost against window size (acumen shuffle-report)",
        fill=BLACK,
        font=title,
        anchor="ma",
    )
    columns = len(datasets)
    width = (WIDTH - MARGIN_LEFT - MARGIN_RIGHT - GAP_X * (columns - 1)) / columns
    height = (HEIGHT - MARGIN_TOP - MARGIN_BOTTOM - GAP_Y) / 2
    for k, (name, reports, shuffled) in enumerate(datasets):
        left = MARGIN_LEFT + k * (width + GAP_X)
        windows = [r["window"] for r in reports]
        top = Panel(canvas, (left, MARGIN_TOP, width, height), windows, (0.0, 1.0), False)
        top.frame(f"{name}: label mix and locality per batch", "share", font, small)
        ideal = reports[0]["label_tv_distance"]["full_shuffle"]["mean"]
        top.line([ideal] * len(windows), BLUE, dashed=True)
        top.line([r["label_tv_distance"]["p95"] for r in reports], BLUE, width=1)
        top.line([r["label_tv_distance"]["mean"] for r in reports], BLUE, marks=True)
        top.line([r["position_correlation"]["mean"] for r in reports], ORANGE, marks=True)
        entries = [
            (BLUE, False, 3, "label TV distance, mean"),
            (BLUE, False, 1, "label TV distance, p95"),
            (BLUE, True, 2, f"full shuffle: {ideal:.3f}"),
            (ORANGE, False, 3, "position correlation"),
        ]
        if shuffled:
            top.line([r["label_tv_distance"]["mean"] for r in shuffled], PURPLE, marks=True)
            entries.append((PURPLE, False, 3, "label TV distance, stored in random order"))
        top.legend(entries, small, 2)
        ahead = [r["bytes_read_ahead"]["mean"] for r in reports]
        everything = reports[0]["bytes_read_ahead"]["full_shuffle"]["mean"]
        low = 2.0 ** math.floor(math.log2(min(ahead)))
        high = 2.0 ** math.ceil(math.log2(everything))
        below = Panel(
            canvas, (left, MARGIN_TOP + height + GAP_Y, width, height), windows, (low, high), True
        )
        below.frame(f"{name}: bytes read ahead per window", "bytes", font, small, _size)
        below.line([everything] * len(windows), GREEN, dashed=True)
        below.line(ahead, GREEN, marks=True)
        chunks = [r["chunks_per_batch"]["mean"] for r in reports]
        room = math.inf
        for x, y, count in reversed(list(zip(windows, ahead, chunks, strict=True))):
            if room - below.x(x) > 36:  # a note only where it has room
                below.note(x, y, f"{count:.0f}", small)
                room = below.x(x)
        below.legend(
            [
                (GREEN, False, 3, "mean over windows (labels: chunks per batch)"),
                (GREEN, True, 2, f"full shuffle: the whole dataset, {_size(everything)}"),
            ],
            small,
            1,
        )
    image.save(out, optimize=True)


class Panel:
    """One chart: x the window on a log2 axis, y linear or log10."""

    def __init__(
        self,
        canvas: ImageDraw.ImageDraw,
        box: tuple[float, float, float, float],
        windows: list[int],
        span: tuple[float, float],
        log_y: bool,
    ) -> None:
        self.canvas = canvas
        self.left, self.top, self.width, self.height = box
        self.windows = windows
        self.low, self.high = span
        self.log_y = log_y
        self.x_high = math.log2(max(windows)) or 1.0

    def x(self, window: float) -> float:
        return self.left + self.width * math.log2(window) / self.x_high

    def y(self, value: float) -> float:
        if self.log_y:
            value = math.log2(max(value, self.low))
            low, high = math.log2(self.low), math.log2(self.high)
        else:
            low, high = self.low, self.high
        return self.top + self.height * (1 - (value - low) / (high - low))

    def frame(
        self,
        title: str,
        unit: str,
        font: ImageFont.ImageFont,
        small: ImageFont.ImageFont,
        shown: Callable[[float], str] = lambda v: f"{v:.1f}",
    ) -> None:
        c, right, bottom = self.canvas, self.left + self.width, self.top + self.height
        c.text((self.left, self.top - 30), title, fill=BLACK, font=font)
        if self.log_y:  # powers of two, at most 8 of them
            first, last = round(math.log2(self.low)), round(math.log2(self.high))
            step = max(1, math.ceil((last - first) / 7))
            ticks = [2.0**e for e in range(last, first - 1, -step)]
        else:
            ticks = [self.low + (self.high - self.low) * k / 5 for k in range(6)]
        for value in ticks:
            y = self.y(value)
            c.line([(self.left, y), (right, y)], fill="#e6e6e6")
            c.text((self.left - 8, y), shown(value), fill=BLACK, font=small, anchor="rm")
        labelled = math.inf
        for window in sorted(set(self.windows), reverse=True):
            x = self.x(window)
            c.line([(x, self.top), (x, bottom)], fill="#f0f0f0")
            if labelled - x > 48:  # the largest window is labelled; crowded others are not
                c.text((x, bottom + 8), f"{window:,}", fill=BLACK, font=small, anchor="ma")
                labelled = x
        c.rectangle([self.left, self.top, right, bottom], outline=BLACK, width=1)
        c.text(
            (self.left + self.width / 2, bottom + 30),
            "window (chunk files), log scale",
            fill=GREY,
            font=small,
            anchor="ma",
        )
        c.text((self.left - 8, self.top - 8), unit, fill=GREY, font=small, anchor="rs")

    def line(
        self,
        values: list[float],
        color: str,
        *,
        width: int = 3,
        dashed: bool = False,
        marks: bool = False,
    ) -> None:
        points = [(self.x(w), self.y(v)) for w, v in zip(self.windows, values, strict=True)]
        if dashed:
            (x0, y0), (x1, _) = points[0], points[-1]
            x0 = self.left
            while x0 < self.left + self.width:
                self.canvas.line([(x0, y0), (min(x0 + 12, x1), y0)], fill=color, width=2)
                x0 += 20
            return
        self.canvas.line(points, fill=color, width=width)
        if marks:
            for px, py in points:
                self.canvas.ellipse([px - 4, py - 4, px + 4, py + 4], fill=color)

    def note(self, window: float, value: float, text: str, font: ImageFont.ImageFont) -> None:
        self.canvas.text(
            (self.x(window) + 6, self.y(value) - 8), text, fill=GREY, font=font, anchor="ls"
        )

    def legend(
        self, entries: list[tuple[str, bool, int, str]], font: ImageFont.ImageFont, columns: int
    ) -> None:
        """The legend under the chart, in ``columns`` (inside, it would hide a curve)."""
        rows, half = 22, self.width / 2
        for k, (color, dashed, width, text) in enumerate(entries):
            x = self.left + half * (k % columns)
            mid = self.top + self.height + 62 + rows * (k // columns)
            if dashed:
                for start in (x, x + 18):
                    self.canvas.line([(start, mid), (start + 12, mid)], fill=color, width=width)
            else:
                self.canvas.line([(x, mid), (x + 30, mid)], fill=color, width=width)
            self.canvas.text((x + 38, mid), text, fill=BLACK, font=font, anchor="lm")


def _size(value: float) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if value >= 1 << shift:
            return f"{value / (1 << shift):.0f} {unit}"
    return f"{value:.0f} B"
