"""Data shaping for the Dashboard page: the store's people events -> figures, tables, CSV.

No streamlit here and no I/O at import time. The page calls `open_dashboard()` once per run
(the store, its sources and dates, or the error to show), then `build_view()` with the
widgets' values, and renders what comes back.

Demo data lives in a store of its own (store.open_demo_store(): a temporary SQLite file, made
once per process), never in the configured database: `open_dashboard(demo=True)` shows it, and
the context says so (ctx.demo) for the page to tell visitors.

Visitors are told that the database is unavailable, never its URL, user, host or port: the
details (passwords hidden) go to the server log.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from datetime import date, datetime, timedelta, tzinfo

import plotly.graph_objects as go

from pipeline.records import LABEL_NAMES

from pipeline.ui.charts import class_color
from pipeline.store import (EventStore, StoreConfig, StoreError, day_range, local_tz,
                    open_demo_store, open_store)
from pipeline.records import CLASSES

RECENT_ROWS = 50
MIN_SHARE_PEOPLE = 10
"""The share-masked line skips buckets with fewer people than this (a share of 2 people is noise)."""
DEFAULT_DAYS = 14
_ERROR_RETRY_S = 10.0

UNAVAILABLE = ("The people database is not available right now, so the dashboard cannot show "
               "the people counted. Counting in the other pages is not affected. You can still "
               "look at demo data.")
"""What visitors read when the store fails; the reason goes to the server log."""

log = logging.getLogger("maskwatch.dashboard")

_stores: dict[str, EventStore] = {}
_errors: dict[str, tuple[float, str]] = {}
_demo: EventStore | None = None
_lock = threading.Lock()


def get_store(url: str | None = None) -> EventStore:
    """The store for the URL (None: the configured one, the default SQLite file included),
    opened once per process. A failure is remembered for a few seconds so that reruns do not
    wait on a dead server each time. Raises StoreError."""
    key = StoreConfig(url=url).resolved_url()      # only a cache key: open_store gets `url`
    with _lock:
        if key in _stores:
            return _stores[key]
        err = _errors.get(key)
        if err and time.monotonic() - err[0] < _ERROR_RETRY_S:
            raise StoreError(err[1])
        try:
            store = open_store(url)     # None: the embedded default, whose folder it creates
        except StoreError as e:
            _errors[key] = (time.monotonic(), str(e))
            raise
        _errors.pop(key, None)
        _stores[key] = store
        return store


def get_demo_store() -> EventStore:
    """The demo store (seeded demo data in a temporary SQLite file of its own), made once per
    process. Raises StoreError."""
    global _demo
    with _lock:
        if _demo is None:
            _demo = open_demo_store()
        return _demo


def reset_stores() -> None:
    """Forget opened stores, the demo one included (tests, or after the URL changed)."""
    global _demo
    with _lock:
        for s in _stores.values():
            s.close()
        if _demo is not None:
            _demo.close()
        _stores.clear()
        _errors.clear()
        _demo = None


@dataclass
class DashboardContext:
    """What the widgets need: the store, sources, the dates with data. error: the message for
    st.error when the store cannot be used; empty: no people logged yet."""

    store: EventStore | None = None
    error: str | None = None
    demo: bool = False
    sources: list[str] = field(default_factory=list)
    first_day: date | None = None
    last_day: date | None = None
    tz: tzinfo | None = None

    @property
    def empty(self) -> bool:
        return self.error is None and self.first_day is None

    @property
    def max_day(self) -> date:
        """The latest day a visitor may pick: today, or the last day with data if later."""
        today = datetime.now(self.tz).date()
        return max(today, self.last_day) if self.last_day else today

    def default_range(self, days: int = DEFAULT_DAYS) -> tuple[date, date]:
        last = self.last_day or datetime.now(self.tz).date()
        first = max(self.first_day or last, last - timedelta(days=days - 1))
        return first, last


def _unavailable(e: StoreError) -> str:
    log.warning("dashboard: %s", e)      # the details (password hidden) for the server's log
    return UNAVAILABLE


def open_dashboard(url: str | None = None, tz: tzinfo | None = None, demo: bool = False
                   ) -> DashboardContext:
    """The configured store (url None) or, with demo=True, the demo store, with its sources and
    days. error: a message for visitors when the store cannot be used."""
    tz = tz or local_tz()
    try:
        store = get_demo_store() if demo else get_store(url)
        sources = store.sources()
        bounds = store.time_bounds()
    except StoreError as e:
        return DashboardContext(error=_unavailable(e), tz=tz, demo=demo)
    if bounds is None:
        return DashboardContext(store=store, tz=tz, demo=demo)
    return DashboardContext(store=store, sources=sources, first_day=bounds[0].astimezone(tz).date(),
                            last_day=bounds[1].astimezone(tz).date(), tz=tz, demo=demo)


@dataclass
class DashboardView:
    """Everything the page renders for one choice of dates, sources and bucket."""

    start: datetime
    end: datetime
    bucket: str
    totals: dict[str, int]
    people: int
    share_masked: float | None
    per_bucket: dict[datetime, dict[str, int]]
    flow_figure: go.Figure
    donut_figure: go.Figure
    share_figure: go.Figure
    recent_rows: list[dict]
    csv: Callable[[], str]
    """Builds the CSV of every person in the range when called: the download button calls it
    only when pressed (a month of 50 cameras is close to a million rows)."""
    csv_name: str
    error: str | None = None

    @property
    def empty(self) -> bool:
        return self.people == 0


def normalise_dates(value, ctx: DashboardContext) -> tuple[date, date]:
    """st.date_input's value (a date, or a tuple of 0-2 dates while choosing) -> (first, last)."""
    if isinstance(value, date):
        return value, value
    vals = [v for v in (value or ()) if isinstance(v, date)]
    if not vals:
        return ctx.default_range()
    first, last = vals[0], vals[-1]
    return (first, last) if first <= last else (last, first)


def build_view(ctx: DashboardContext, dates, sources: list[str] | None, bucket: str = "day"
               ) -> DashboardView:
    """Query the store for the range and sources and shape every chart and table.
    StoreError (UNAVAILABLE; the reason is logged) when the database fails in between."""
    if ctx.store is None:
        raise StoreError(ctx.error or UNAVAILABLE)
    try:
        return _build_view(ctx, dates, sources, bucket)
    except StoreError as e:
        raise StoreError(_unavailable(e)) from None


def _build_view(ctx: DashboardContext, dates, sources: list[str] | None, bucket: str) -> DashboardView:
    first, last = normalise_dates(dates, ctx)
    start, end = day_range(first, last, ctx.tz)
    srcs = list(sources) if sources is not None else None
    store = ctx.store
    per_bucket = store.counts_by(bucket, start, end, srcs, ctx.tz)
    per_bucket = _fill(per_bucket, bucket, start, end, ctx.tz)
    totals = {c: sum(row.get(c, 0) for row in per_bucket.values()) for c in CLASSES}
    people = sum(totals.values())
    share = totals["mask"] / people if people else None
    recent = store.recent(RECENT_ROWS, srcs, start, end)
    return DashboardView(
        start=start, end=end, bucket=bucket, totals=totals, people=people, share_masked=share,
        per_bucket=per_bucket, flow_figure=flow_figure(per_bucket, bucket),
        donut_figure=donut_figure(totals), share_figure=share_figure(per_bucket, bucket),
        recent_rows=recent_rows(recent, ctx.tz), csv=partial(store.export_csv, start, end, srcs),
        csv_name=f"maskwatch_people_{first.isoformat()}_{last.isoformat()}.csv")


def _fill(per_bucket: dict, bucket: str, start: datetime, end: datetime, tz) -> dict:
    """Every bucket of the range present (zeros where nobody came), so lines drop to zero at
    night instead of jumping across the gap. Hour buckets are filled only for up to 62 days."""
    step = timedelta(days=1) if bucket == "day" else timedelta(hours=1)
    if bucket == "hour" and end - start > timedelta(days=62):
        return per_bucket
    out = {}
    t = start.astimezone(tz)
    while t < end:
        key = t if bucket == "hour" else datetime(t.year, t.month, t.day, tzinfo=tz)
        out[key] = dict(per_bucket.get(key, {c: 0 for c in CLASSES}))
        t = (datetime.fromtimestamp(t.timestamp() + step.total_seconds(), tz) if bucket == "hour"
             else datetime(t.year, t.month, t.day, tzinfo=tz) + step)
    for k, v in per_bucket.items():   # anything the grid missed (DST edges) is kept
        out.setdefault(k, v)
    return dict(sorted(out.items()))


def _naive(t: datetime) -> datetime:
    """Local wall-clock time for plotly's x axis."""
    return t.replace(tzinfo=None)


def flow_figure(per_bucket: dict, bucket: str) -> go.Figure:
    """People per hour or per day, one line per class (the daily flow)."""
    xs = [_naive(t) for t in per_bucket]
    fig = go.Figure()
    for c in CLASSES:
        fig.add_trace(go.Scatter(x=xs, y=[row.get(c, 0) for row in per_bucket.values()], name=LABEL_NAMES[c],
                                 mode="lines+markers" if bucket == "day" else "lines",
                                 line=dict(color=class_color(c), width=2), meta=c))
    fig.update_layout(title=f"People per {bucket}", height=360, hovermode="x unified",
                      margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1))
    fig.update_yaxes(title="people", rangemode="tozero")
    return fig


def donut_figure(totals: dict[str, int]) -> go.Figure:
    fig = go.Figure(go.Pie(labels=[LABEL_NAMES[c] for c in CLASSES], values=[totals.get(c, 0) for c in CLASSES],
                           hole=0.55, sort=False, marker=dict(colors=[class_color(c) for c in CLASSES]),
                           textinfo="percent", meta=list(CLASSES)))
    fig.update_layout(title="Proportions", height=340, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def share_figure(per_bucket: dict, bucket: str) -> go.Figure:
    """Share of people wearing a mask correctly, per bucket (gaps where fewer than
    MIN_SHARE_PEOPLE came)."""
    xs, ys = [], []
    for t, row in per_bucket.items():
        n = sum(row.values())
        xs.append(_naive(t))
        ys.append(round(100 * row.get("mask", 0) / n, 2) if n >= MIN_SHARE_PEOPLE else None)
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="lines+markers" if bucket == "day" else "lines",
                               name="masked", line=dict(color=class_color("mask"), width=2),
                               connectgaps=False))
    fig.update_layout(title="Share masked correctly", height=340, margin=dict(l=10, r=10, t=40, b=10),
                      showlegend=False)
    fig.update_yaxes(title="% of people", range=[0, 100])
    return fig


def recent_rows(events, tz) -> list[dict]:
    return [{"first seen": e.first_seen.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
             "seconds in view": round((e.last_seen - e.first_seen).total_seconds(), 1),
             "label": LABEL_NAMES.get(e.label, e.label), "confidence": f"{e.confidence:.0%}",
             "source": e.source, "frames": e.frames} for e in events]
