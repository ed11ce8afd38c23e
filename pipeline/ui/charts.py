"""Plotly figures shared by the pages (no streamlit here). Colours match pipeline.media.draw.COLORS."""
from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go

from pipeline.media.draw import COLORS
from pipeline.records import CLASSES, LABEL_NAMES



def class_color(label: str) -> str:
    r, g, b = COLORS.get(label, COLORS[""])
    return f"rgb({r},{g},{b})"


def _layout(fig: go.Figure, title: str | None = None, height: int = 300) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1))
    return fig


def counts_bar(counts: Mapping[str, int], title: str | None = "Faces per class") -> go.Figure:
    """One bar per class (all classes shown, zero included)."""
    xs = [LABEL_NAMES[c] for c in CLASSES]
    ys = [int(counts.get(c, 0)) for c in CLASSES]
    fig = go.Figure(go.Bar(x=xs, y=ys, marker_color=[class_color(c) for c in CLASSES],
                           text=ys, textposition="auto", name="faces"))
    fig.update_yaxes(title="faces", rangemode="tozero", dtick=1 if max(ys, default=0) <= 10 else None)
    return _layout(fig, title)


def counts_over_time(times: Sequence[float], series: Mapping[str, Sequence[int]],
                     title: str | None = "Faces per class over time", x_title: str = "time (s)",
                     height: int = 320) -> go.Figure:
    """Line chart: one line per class. series: {class: counts aligned with times}."""
    fig = go.Figure()
    for c in CLASSES:
        fig.add_trace(go.Scatter(x=list(times), y=list(series.get(c, [])), mode="lines",
                                 name=LABEL_NAMES[c], line=dict(color=class_color(c), width=2,
                                                                 shape="hv")))
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title="faces", rangemode="tozero")
    return _layout(fig, title, height)
