"""The report's charts: matplotlib (Agg, no display) rendered to SVG and embedded as data URIs.

matplotlib rather than Vega-Lite or Plotly: it is already a dependency, the
page needs no JavaScript at all (it opens the same in a browser that blocks
scripts, in a CI artifact viewer, offline), and nothing has to be vendored and
kept up to date inside tamis. Text stays text in the SVG (`svg.fonttype:
none`), drawn in the viewer's own sans-serif, and ids are salted with a fixed
string, so the same run gives the same file. Charts are drawn from numbers the
data module already binned; the numbers themselves are in the page's tables.
"""

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

KEPT, DROPPED, MARK, NEUTRAL = "#4c72b0", "#dd8452", "#b2182b", "#8c8c8c"
CHAR_INCHES = 0.063  # mean width of a character of the 8 pt sans-serif labels
_RC = {"svg.fonttype": "none", "svg.hashsalt": "tamis-report", "font.size": 8, "axes.spines.top": False,
       "axes.spines.right": False, "axes.titlesize": 9, "legend.fontsize": 7, "legend.frameon": False}


@contextmanager
def _figure(width: float, height: float) -> Iterator[Figure]:
    with matplotlib.rc_context(_RC):
        yield Figure(figsize=(width, height))


def _uri(fig: Figure) -> str:
    """The figure as an SVG data URI."""
    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _margins(fig: Figure, left: float, bottom: float, right: float = 0.15, top: float = 0.1, **kw) -> None:
    """Margins in inches, sized from the labels' lengths: matplotlib's tight layout would draw each chart twice."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h, **kw)


def _label_inches(labels: list[str]) -> float:
    """Width of the longest label at the charts' 8 pt."""
    return 0.12 + CHAR_INCHES * max((len(s) for s in labels), default=0)


def _short(label: str, n: int = 34) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


def hbars(labels: list[str], series: dict[str, list[float]], colors: list[str], xlabel: str) -> str:
    """Horizontal bars, first label on top; several series stacked."""
    n = len(labels)
    with _figure(4.3, max(1.3, 0.5 + 0.2 * n)) as fig:
        ax = fig.add_subplot()
        y = list(range(n))[::-1]
        left = [0.0] * n
        for (name, values), color in zip(series.items(), colors, strict=False):
            ax.barh(y, values, left=left, color=color, label=name, height=0.8)
            left = [a + b for a, b in zip(left, values, strict=True)]
        shown = [_short(s) for s in labels]
        ax.set_yticks(y, shown)
        ax.set_ylim(-0.6, n - 0.4)
        ax.set_xlabel(xlabel)
        if len(series) > 1:
            ax.legend(loc="lower right")
        _margins(fig, _label_inches(shown), 0.42)
        return _uri(fig)


def funnel(labels: list[str], docs: list[int], tokens: list[int], tokens_label: str) -> str:
    """Documents and approximate tokens remaining after each stage, side by side."""
    n = len(labels)
    with _figure(7.2, 0.7 + 0.24 * n) as fig:
        y = list(range(n))[::-1]
        shown = [_short(s, 28) for s in labels]
        for i, (values, label, color) in enumerate(((docs, "documents", KEPT), (tokens, tokens_label, NEUTRAL))):
            ax = fig.add_subplot(1, 2, i + 1)
            ax.barh(y, values, color=color, height=0.75)
            ax.set_yticks(y, shown if i == 0 else [])
            ax.set_xlabel(label)
            ax.xaxis.set_major_locator(MaxNLocator(4))
        _margins(fig, _label_inches(shown), 0.42, right=0.3, wspace=0.08)
        return _uri(fig)


class Histograms:
    """Draws many small histograms on one reused figure: kept documents and those a filter dropped, stacked,
    thresholds as dashed lines. Updating the artists of one figure costs a third of building a figure per
    chart, which matters for a chain with dozens of score columns."""

    MAX_MARKS = 4

    def __init__(self) -> None:
        with matplotlib.rc_context(_RC):
            self.fig = Figure(figsize=(3.3, 1.9))
            ax = self.ax = self.fig.add_subplot()
            self.kept = ax.stairs([0], [0, 1], fill=True, color=KEPT, label="kept")
            self.dropped = ax.stairs([0], [0, 1], fill=True, color=DROPPED, label="dropped here")
            self.marks = [ax.axvline(0, color=MARK, linestyle="--", linewidth=1.2) for _ in range(self.MAX_MARKS)]
            ax.xaxis.set_major_locator(MaxNLocator(5))
            ax.yaxis.set_major_locator(MaxNLocator(3, integer=True))
            self.fig.subplots_adjust(left=0.16, right=0.97, bottom=0.15, top=0.96)

    def __call__(self, edges: list[float], kept: list[int], dropped: list[int], marks: list[float]) -> str:
        """The chart of counts per bin (`edges` has one more entry); marks outside the edges are not drawn."""
        total = [a + b for a, b in zip(kept, dropped, strict=True)]
        with matplotlib.rc_context(_RC):
            self.kept.set_data(kept, edges)
            self.dropped.set_data(total, edges, baseline=kept)
            inside = [m for m in marks if edges[0] <= m <= edges[-1]][: self.MAX_MARKS]
            for line, value in zip(self.marks, inside + [None] * self.MAX_MARKS, strict=False):
                line.set_visible(value is not None)
                if value is not None:
                    line.set_xdata([value, value])
            self.ax.set_xlim(edges[0], edges[-1])
            self.ax.set_ylim(0, max(max(total, default=0), 1) * 1.05)
        return _uri(self.fig)


def bars(labels: list[str], series: dict[str, list[float]], colors: list[str], ylabel: str, integer: bool = True
         ) -> str:
    """Vertical bars per label, several series side by side."""
    n, k = len(labels), max(len(series), 1)
    width = 0.8 / k
    shown = [_short(s, 16) for s in labels]
    turn = n > 3 and max(len(s) for s in shown) > 4
    below = 0.3 + (0.6 * CHAR_INCHES * max(len(s) for s in shown) if turn else 0.1)
    with _figure(min(7.2, 1.6 + 0.45 * n * k), 1.8 + below) as fig:
        ax = fig.add_subplot()
        for j, ((name, values), color) in enumerate(zip(series.items(), colors, strict=False)):
            ax.bar([i + (j - (k - 1) / 2) * width for i in range(n)], values, width=width, color=color, label=name)
        ax.set_xticks(range(n), shown, rotation=35 if turn else 0, ha="right" if turn else "center")
        ax.set_xlim(-0.5 - 0.4 * (n < 3), n - 0.5 + 0.4 * (n < 3))
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_locator(MaxNLocator(4, integer=integer))
        if k > 1:
            ax.legend()
        _margins(fig, 0.75, below)
        return _uri(fig)
