"""EventStore (add and query people events) and open_store()."""
from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from pipeline.settings import current as current_settings
from pipeline.records import PersonEvent
from pipeline.records import CLASSES
from pipeline.store.connection import error_reason, create_engine, safe_url
from pipeline.store.schema import ROLLUP_DIALECTS, migrate, people_events, people_hourly, people_hourly_all
from pipeline.store.times import aware_utc, utc_naive
from pipeline.store.types import CSV_COLUMNS, MAX_SOURCE_LEN, StoreConfig, StoreError, StoredEvent
from pipeline.store.writer import BackgroundWriter

log = logging.getLogger("maskwatch.store")

class EventStore:
    """People events in a database. Thread-safe (one engine, a connection per call)."""

    def __init__(self, engine: Engine, url: str, config: StoreConfig | None = None,
                 demo: bool = False):
        self.engine = engine
        self.url = url
        self.config = config or StoreConfig()
        self.demo = demo
        """True for a demo store (open_demo_store()): seeded demo data, no real events."""
        self._rollup: bool | None = None      # people_hourly there (checked on first use)

    @property
    def display_url(self) -> str:
        return safe_url(self.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _run(self, fn, what: str):
        try:
            return fn()
        except StoreError:
            raise
        except SQLAlchemyError as e:
            raise StoreError(f"The database {self.display_url} failed while {what}: "
                             f"{error_reason(e, self.url)}") from None

    # -------------------------------------------------------------------------- writing
    def add_events(self, events: Iterable[PersonEvent]) -> int:
        """Insert events (PersonEvent, times in UNIX seconds) in one transaction."""
        rows = [{"first_seen": utc_naive(e.first_seen), "last_seen": utc_naive(e.last_seen),
                 "label": str(e.label)[:16], "confidence": float(e.confidence)
                 if math.isfinite(e.confidence) else 0.0,
                 "source": (e.source or "unknown")[:MAX_SOURCE_LEN], "frames": int(e.frames)}
                for e in events]
        if not rows:
            return 0

        def go():
            with self.engine.begin() as conn:
                conn.execute(sa.insert(people_events), rows)
            return len(rows)
        return self._run(go, "saving events")

    def delete_sources(self, sources: Sequence[str]) -> int:
        def go():
            with self.engine.begin() as conn:
                return conn.execute(sa.delete(people_events).where(
                    people_events.c.source.in_(list(sources)))).rowcount
        return self._run(go, "deleting events")

    def writer(self, **overrides) -> "BackgroundWriter":
        """A background writer for this store (settings from the store's config)."""
        c = self.config
        kw = dict(interval_s=c.flush_interval_s, batch_size=c.batch_size, max_buffer=c.max_buffer)
        kw.update(overrides)
        return BackgroundWriter(self, **kw)

    # -------------------------------------------------------------------------- reading
    def _where(self, start=None, end=None, sources=None, labels=None):
        cond = []
        c = people_events.c
        if start is not None:
            cond.append(c.first_seen >= utc_naive(start))
        if end is not None:
            cond.append(c.first_seen < utc_naive(end))
        if sources is not None:
            cond.append(c.source.in_(list(sources)))
        if labels is not None:
            cond.append(c.label.in_(list(labels)))
        return sa.and_(sa.true(), *cond)

    def events(self, start=None, end=None, sources: Sequence[str] | None = None,
               labels: Sequence[str] | None = None, limit: int | None = None,
               newest_first: bool = False) -> list[StoredEvent]:
        """Events with start <= first_seen < end (None: open), optionally of some sources."""
        c = people_events.c
        q = sa.select(c.id, c.first_seen, c.last_seen, c.label, c.confidence, c.source, c.frames
                      ).where(self._where(start, end, sources, labels))
        q = q.order_by(c.first_seen.desc(), c.id.desc()) if newest_first else q.order_by(c.first_seen, c.id)
        if limit is not None:
            q = q.limit(int(limit))

        def go():
            with self.engine.connect() as conn:
                return [StoredEvent(r.id, aware_utc(r.first_seen), aware_utc(r.last_seen), r.label,
                                    float(r.confidence), r.source, int(r.frames))
                        for r in conn.execute(q)]
        return self._run(go, "reading events")

    def recent(self, limit: int = 20, sources: Sequence[str] | None = None, start=None,
               end=None) -> list[StoredEvent]:
        return self.events(start, end, sources, limit=limit, newest_first=True)

    def count(self, start=None, end=None, sources: Sequence[str] | None = None) -> dict[str, int]:
        """People per label in the range (every class present); from the hourly counts."""
        out = {k: 0 for k in CLASSES}
        for _, label, n in self.hourly_counts(start, end, sources):
            out[label] = out.get(label, 0) + n
        return out

    def sources(self) -> list[str]:
        # a loose index scan on (source, first_seen): one index probe per source, not a scan
        s = sa.select(sa.func.min(people_events.c.source).label("source")).cte("s", recursive=True)
        step = sa.select(sa.select(sa.func.min(people_events.c.source)).where(
            people_events.c.source > s.c.source).scalar_subquery()).where(s.c.source.is_not(None))
        s = s.union_all(step)
        q = sa.select(s.c.source).where(s.c.source.is_not(None)).order_by(s.c.source)

        def go():
            with self.engine.connect() as conn:
                return [r[0] for r in conn.execute(q)]
        return self._run(go, "listing sources")

    def time_bounds(self, sources: Sequence[str] | None = None) -> tuple[datetime, datetime] | None:
        """(first, last) first_seen, aware UTC; None when empty."""
        c = people_events.c
        w = self._where(sources=sources)     # min and max apart: each one index probe (SQLite
        q = sa.select(sa.select(sa.func.min(c.first_seen)).where(w).scalar_subquery(),  # scans
                      sa.select(sa.func.max(c.first_seen)).where(w).scalar_subquery())  # for both)

        def go():
            with self.engine.connect() as conn:
                lo, hi = conn.execute(q).one()
            return None if lo is None else (aware_utc(lo), aware_utc(hi))
        return self._run(go, "reading the time range")

    def _hour_expr(self):
        col = people_events.c.first_seen
        if self.dialect == "sqlite":
            return sa.func.strftime("%Y-%m-%d %H:00:00", col)
        if self.dialect == "postgresql":
            return sa.func.date_trunc("hour", col)
        if self.dialect in ("mysql", "mariadb"):
            return sa.func.date_format(col, "%Y-%m-%d %H:00:00")
        return None

    def _has_rollup(self, conn) -> bool:
        if self._rollup is None:
            self._rollup = (self.dialect in ROLLUP_DIALECTS
                            and sa.inspect(conn).has_table("people_hourly"))
        return self._rollup

    def _rollup_counts(self, conn, acc, start, end, sources) -> tuple:
        """Whole UTC hours of [start, end) from people_hourly into acc; returns the parts of the
        range left to count from the events ([(start, end)], none when all were whole hours)."""
        lo = None if start is None else utc_naive(start)
        hi = None if end is None else utc_naive(end)
        top = lambda t: t.replace(minute=0, second=0, microsecond=0)  # noqa: E731
        inner_lo = None if lo is None else (lo if lo == top(lo) else top(lo) + timedelta(hours=1))
        inner_hi = None if hi is None else top(hi)
        if inner_lo is not None and inner_hi is not None and inner_lo >= inner_hi:
            return [(start, end)]
        if sources is not None and len(sources) > 1 and set(self.sources()) <= set(sources):
            sources = None                       # every source chosen (the page's default)
        h = (people_hourly if sources is not None else people_hourly_all).c
        cond = [sa.true()]
        if inner_lo is not None:
            cond.append(h.hour >= inner_lo)
        if inner_hi is not None:
            cond.append(h.hour < inner_hi)
        if sources is not None:
            cond.append(h.source.in_(list(sources)))
            q = sa.select(h.hour, h.label, sa.func.sum(h.people)).where(*cond).group_by(h.hour, h.label)
        else:
            q = sa.select(h.hour, h.label, h.people).where(*cond)
        utc = timezone.utc
        for t, label, n in conn.execute(q).tuples():
            key = (t.replace(tzinfo=utc), label)
            acc[key] = acc.get(key, 0) + int(n)
        rest = []
        if lo is not None and lo < inner_lo:
            rest.append((lo, inner_lo))
        if hi is not None and inner_hi < hi:
            rest.append((inner_hi, hi))
        return rest

    def hourly_counts(self, start=None, end=None, sources: Sequence[str] | None = None
                      ) -> list[tuple[datetime, str, int]]:
        """[(hour start, aware UTC; label; people)] for hours with people, in time order.
        Whole hours come from the hourly rollup (PostgreSQL, SQLite); the rest is grouped in
        the database (SQLite, PostgreSQL, MySQL), else in Python."""
        hour = self._hour_expr()

        def go():
            acc: dict[tuple[datetime, str], int] = {}
            with self.engine.connect() as conn:
                ranges = (self._rollup_counts(conn, acc, start, end, sources)
                          if self._has_rollup(conn) else [(start, end)])
                for a, b in ranges:
                    self._count_hours(conn, acc, hour, self._where(a, b, sources))
            return sorted((t, lab, n) for (t, lab), n in acc.items())   # (t, lab) are unique
        return self._run(go, "counting people per hour")

    def _count_hours(self, conn, acc, hour, where) -> None:
        """People per (hour, label) of the events matching `where`, added into acc."""
        if hour is not None:
            h = hour.label("hour")
            q = sa.select(h, people_events.c.label, sa.func.count()).where(where).group_by(
                h, people_events.c.label)
            for t, label, n in conn.execute(q):
                key = (aware_utc(t), label)
                acc[key] = acc.get(key, 0) + int(n)
        else:
            q = sa.select(people_events.c.first_seen, people_events.c.label).where(where)
            for t, label in conn.execute(q):
                key = (aware_utc(t).replace(minute=0, second=0, microsecond=0), label)
                acc[key] = acc.get(key, 0) + 1

    def counts_by(self, bucket: str = "day", start=None, end=None,
                  sources: Sequence[str] | None = None, tz: tzinfo | None = None
                  ) -> dict[datetime, dict[str, int]]:
        """{bucket start in tz: {label: people}} for 'hour' or 'day' buckets (every class present
        in each bucket). Days are local days of tz (default UTC), built from UTC hours, so a
        time zone whose offset is not whole hours puts up to 30 min of a day in its neighbour."""
        if bucket not in ("hour", "day"):
            raise ValueError("bucket must be 'hour' or 'day'")
        tz = tz or timezone.utc
        out: dict[datetime, dict[str, int]] = {}
        bucket_of: dict[datetime, datetime] = {}     # each UTC hour comes once per label: convert once
        for t, label, n in self.hourly_counts(start, end, sources):
            key = bucket_of.get(t)
            if key is None:
                local = t.astimezone(tz)
                key = bucket_of[t] = (local if bucket == "hour"
                                      else datetime(local.year, local.month, local.day, tzinfo=tz))
            row = out.get(key)
            if row is None:                  # (a year of hours is 26k rows: no dict per row)
                row = out[key] = {k: 0 for k in CLASSES}
            row[label] = row.get(label, 0) + n
        return dict(sorted(out.items()))

    def share_masked(self, bucket: str = "day", start=None, end=None,
                     sources: Sequence[str] | None = None, tz: tzinfo | None = None
                     ) -> list[tuple[datetime, float, int]]:
        """[(bucket start, share of people wearing a mask correctly, people)] per bucket."""
        out = []
        for t, row in self.counts_by(bucket, start, end, sources, tz).items():
            total = sum(row.values())
            if total:
                out.append((t, row.get("mask", 0) / total, total))
        return out

    def export_csv(self, start=None, end=None, sources: Sequence[str] | None = None,
                   out: io.TextIOBase | None = None) -> str:
        """Events as CSV (CSV_COLUMNS, times ISO 8601 UTC). Written to `out` if given; returns the
        text when out is None."""
        buf = out or io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
        w.writeheader()
        for e in self.events(start, end, sources):
            w.writerow(e.as_row())
        return buf.getvalue() if out is None else ""

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str | None = None, config: StoreConfig | None = None, *,
               demo: bool = False) -> EventStore:
    """Connect, create/migrate the schema, and return the store.

    Raises StoreError (a sentence for the user) when the URL is bad, the driver is missing or
    the database cannot be reached. demo: the store is a demo store (open_demo_store())."""
    cfg = config or StoreConfig()
    if url:
        cfg = replace(cfg, url=url)
    resolved = cfg.resolved_url()
    if resolved.startswith("sqlite:") and not (cfg.url or current_settings().db_url):
        try:   # the default data folder is the app's own: create it
            Path(make_url(resolved).database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"Cannot create the data folder for {safe_url(resolved)}: "
                             f"{e.strerror or e}") from None
    engine = create_engine(resolved, cfg.connect_timeout_s)
    try:
        with engine.connect():
            pass
        migrate(engine)
    except StoreError:
        engine.dispose()
        raise
    except SQLAlchemyError as e:
        engine.dispose()
        raise StoreError(f"Cannot reach the database {safe_url(resolved)}: {error_reason(e, resolved)}") from None
    except ImportError as e:   # a driver imported lazily on first connect
        engine.dispose()
        raise StoreError(f"The database driver is not installed ({e.name or e}).") from None
    except (ValueError, TypeError, OSError) as e:   # a driver rejecting a part of the URL
        engine.dispose()
        raise StoreError(f"Cannot use the database {safe_url(resolved)}: {error_reason(e, resolved)}") from None
    return EventStore(engine, resolved, cfg, demo=demo)
