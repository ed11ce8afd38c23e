"""The Dashboard at scale: fill a store with about 10 million people events (a year of 50
cameras) and time the Dashboard's queries on PostgreSQL and on SQLite.

    python -m benchmarks.dashboard_scale [--events 10000000] [--cameras 50] [--days 365]
        [--pg-url URL | --no-pg] [--sqlite PATH | --no-sqlite] [--repeat 10] [--json OUT]

Without --pg-url a throwaway PostgreSQL is started on 127.0.0.1 (tests/pg_server.py).

Bulk load (`fill`): events are drawn per camera and hour from an office building's day (the
demo profile of pipeline.store: arrivals at 8-9, lunch, leaving at 17-18, quieter weekends),
Poisson counts scaled to the wanted total, generated with numpy a month at a time; PostgreSQL
gets them through COPY (CSV written by pyarrow), SQLite through executemany in one
transaction per chunk. The schema is the app's (open_store migrates it): on PostgreSQL the
indexes and the hourly rollup (schema v3) are maintained by the triggers during the load, as in
use; on SQLite, whose row triggers would add an upsert per person, the rollup is dropped for
the load and rebuilt after by the v3 migration step itself (pipeline.store.schema.MIGRATIONS[2]).

Queries timed (`time_queries`), through the store's own methods that the Dashboard calls:
open (sources + time bounds, once per page run), people per hour and per day over the last
month and the whole year (counts_by, all cameras and one camera), the donut (count), and the
recent events table (recent, 50 rows). p50 and p95 over --repeat runs after one warm-up.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.store import schema  # noqa: E402
from pipeline.store import (WEEKDAY_PROFILE, WEEKEND_PROFILE, EventStore, StoreConfig,  # noqa: E402
                            open_store)

LABELS = np.array(["mask", "no_mask", "incorrect"])


def generate(start: datetime, days: int, cameras: int, events: int, seed: int = 7):
    """Yield pyarrow Tables (first_seen, last_seen, label, confidence, source, frames), about
    `events` rows over `days` days from `start` (UTC), a month at a time, in time order."""
    import pyarrow as pa
    rng = np.random.default_rng(seed)
    wk, we = np.array(WEEKDAY_PROFILE), np.array(WEEKEND_PROFILE)
    day_mean = (5 * wk.sum() + 2 * we.sum()) / 7
    per_cam_day = events / days / cameras
    cam_scale = rng.uniform(0.4, 1.6, cameras)
    cam_scale /= cam_scale.mean()
    names = np.array([f"cam{k:02d}" for k in range(cameras)])
    for d0 in range(0, days, 30):
        nd = min(30, days - d0)
        day_starts = np.array([(start + timedelta(days=d0 + i)) for i in range(nd)])
        weekend = np.array([t.weekday() >= 5 for t in day_starts])
        profile = np.where(weekend[:, None], we[None, :], wk[None, :]) / day_mean * per_cam_day
        lam = profile[:, None, :] * cam_scale[None, :, None]             # [day, camera, hour]
        counts = rng.poisson(lam)
        n = int(counts.sum())
        flat = np.repeat(np.arange(counts.size), counts.ravel())
        day, cam, hour = np.unravel_index(flat, counts.shape)
        base = np.array([t.timestamp() for t in day_starts])[day] + hour * 3600.0
        first = base + rng.uniform(0, 3600, n)
        order = np.argsort(first, kind="stable")
        first, cam = first[order], cam[order]
        dur = np.clip(rng.lognormal(1.0, 0.5, n), 0.4, 30)
        labels = LABELS[rng.choice(3, size=n, p=[0.72, 0.18, 0.10])]
        conf = np.clip(rng.beta(14, 1.6, n), 0.5, 0.999)
        frames = np.maximum(3, (dur * rng.uniform(6, 15, n)).astype(np.int32))
        us = lambda x: pa.array((x * 1e6).astype("int64"), type=pa.timestamp("us"))  # noqa: E731
        yield pa.table({"first_seen": us(first), "last_seen": us(first + dur), "label": labels,
                        "confidence": conf.astype(np.float64), "source": names[cam],
                        "frames": frames})


def fill(store: EventStore, events: int = 10_000_000, cameras: int = 50, days: int = 365,
         end: datetime | None = None, seed: int = 7, log=print) -> int:
    """Bulk-load about `events` people into the store (COPY on PostgreSQL). Returns the rows."""
    end = (end or datetime.now(timezone.utc)).replace(minute=0, second=0, microsecond=0)
    start = (end - timedelta(days=days)).replace(hour=0)
    total = 0
    t0 = time.perf_counter()
    sqlite = store.dialect == "sqlite"
    if sqlite:      # row triggers cost a rollup upsert per person: rebuild the rollup after
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS people_events_hourly_add")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS people_events_hourly_remove")
            schema.people_hourly.drop(conn, checkfirst=True)
            schema.people_hourly_all.drop(conn, checkfirst=True)
    raw = store.engine.raw_connection()
    try:
        for table in generate(start, days, cameras, events, seed):
            if store.dialect == "postgresql":
                _copy_pg(raw, table)
            else:
                _insert_sqlite(raw, table)
            total += table.num_rows
            log(f"  {total:,} events loaded ({time.perf_counter() - t0:.0f} s)")
    finally:
        raw.close()
    if sqlite:      # the v3 migration step: rollup tables, triggers, filled from the events
        with store.engine.begin() as conn:
            schema.MIGRATIONS[2](conn)      # the v3 step: rollup tables, triggers, backfill
        log(f"  rollup rebuilt ({time.perf_counter() - t0:.0f} s)")
    return total


def _copy_pg(raw, table) -> None:
    import pyarrow.csv as pacsv
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
    buf.seek(0)
    cur = raw.cursor()
    cur.copy_expert("COPY people_events (first_seen, last_seen, label, confidence, source, frames) "
                    "FROM STDIN WITH (FORMAT csv)", buf)
    raw.commit()


def _insert_sqlite(raw, table) -> None:
    import pyarrow.compute as pc
    fmt = "%Y-%m-%d %H:%M:%S"       # with microseconds: SQLAlchemy's SQLite text format
    cols = [pc.strftime(table["first_seen"], fmt).to_pylist(), pc.strftime(table["last_seen"], fmt).to_pylist(),
            table["label"].to_pylist(), table["confidence"].to_pylist(), table["source"].to_pylist(),
            table["frames"].to_pylist()]
    cur = raw.cursor()
    cur.execute("BEGIN")
    cur.executemany("INSERT INTO people_events (first_seen, last_seen, label, confidence, source, "
                    "frames) VALUES (?, ?, ?, ?, ?, ?)", zip(*cols))
    cur.execute("COMMIT")


def _time(fn, repeat: int) -> dict:
    fn()                                   # warm-up (caches, plans)
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000)
    ts.sort()
    return {"p50_ms": round(statistics.median(ts), 1),
            "p95_ms": round(ts[min(len(ts) - 1, int(round(0.95 * (len(ts) - 1))))], 1),
            "max_ms": round(ts[-1], 1)}


def time_queries(store: EventStore, repeat: int = 10, log=print) -> dict:
    """The Dashboard's queries on the store's whole range (last month, whole year)."""
    lo, hi = store.time_bounds()
    tz = timezone.utc
    end = (hi + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    month, year = end - timedelta(days=30), end - timedelta(days=365)
    cam = store.sources()[0]
    queries = {
        "open: sources + time bounds": lambda: (store.sources(), store.time_bounds()),
        "per hour, month": lambda: store.counts_by("hour", month, end, None, tz),
        "per day, month": lambda: store.counts_by("day", month, end, None, tz),
        "per hour, year": lambda: store.counts_by("hour", year, end, None, tz),
        "per day, year": lambda: store.counts_by("day", year, end, None, tz),
        "per day, year, one camera": lambda: store.counts_by("day", year, end, [cam], tz),
        "donut, month": lambda: store.count(month, end),
        "donut, year": lambda: store.count(year, end),
        "recent 50, month": lambda: store.recent(50, None, month, end),
        "recent 50, year, one camera": lambda: store.recent(50, [cam], year, end),
    }
    out = {}
    for name, fn in queries.items():
        out[name] = r = _time(fn, repeat)
        log(f"  {name:<30} p50 {r['p50_ms']:>8.1f} ms   p95 {r['p95_ms']:>8.1f} ms")
    return out


def event_count(store: EventStore) -> int:
    import sqlalchemy as sa
    with store.engine.connect() as c:
        return int(c.execute(sa.text("SELECT count(*) FROM people_events")).scalar())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--cameras", type=int, default=50)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--pg-url")
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--sqlite", help="SQLite file (default: a temporary one)")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    res = {"events_wanted": a.events, "cameras": a.cameras, "days": a.days, "machine":
           {"cpus": os.cpu_count(), "load_before": os.getloadavg()}}
    if not a.no_pg:
        server = None
        url = a.pg_url
        if not url:
            from tests.support.pg_server import PgServer
            server = PgServer().start()
            url = server.url
        try:
            store = open_store(url, StoreConfig(url=url))
            if event_count(store) == 0:
                t = time.perf_counter()
                fill(store, a.events, a.cameras, a.days)
                res["pg_load_s"] = round(time.perf_counter() - t, 1)
                with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                    c.exec_driver_sql("VACUUM ANALYZE")
            res["pg_events"] = event_count(store)
            print(f"PostgreSQL, {res['pg_events']:,} events:")
            res["postgresql"] = time_queries(store, a.repeat)
            store.close()
        finally:
            if server:
                server.stop()
    if not a.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="mwdash") as d:
            path = a.sqlite or str(Path(d) / "maskwatch.db")
            url = f"sqlite:///{path}"
            store = open_store(url, StoreConfig(url=url))
            if event_count(store) == 0:
                t = time.perf_counter()
                fill(store, a.events, a.cameras, a.days)
                res["sqlite_load_s"] = round(time.perf_counter() - t, 1)
                with store.engine.connect() as c:
                    c.exec_driver_sql("ANALYZE")
            res["sqlite_events"] = event_count(store)
            print(f"SQLite, {res['sqlite_events']:,} events:")
            res["sqlite"] = time_queries(store, a.repeat)
            store.close()
    res["machine"]["load_after"] = os.getloadavg()
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
