"""Seeded demo data, only ever written to a store of its own (open_demo_store())."""
from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Sequence


from pipeline.records import PersonEvent
from pipeline.store.events import EventStore, open_store
from pipeline.store.times import local_tz
from pipeline.store.types import DEMO_SOURCES, StoreConfig, StoreError

log = logging.getLogger("maskwatch.store")

WEEKDAY_PROFILE = (0.3, 0.2, 0.1, 0.1, 0.2, 0.8, 4, 22, 58, 38, 16, 14, 34, 30, 15, 14,
                    18, 44, 26, 10, 6, 4, 2, 1)
WEEKEND_PROFILE = (0.4, 0.3, 0.2, 0.1, 0.1, 0.2, 0.6, 2, 5, 8, 10, 12, 13, 12, 11, 10,
                    9, 8, 7, 5, 4, 3, 2, 1)
_DEMO_SCALE = {"demo-entrance": 1.0, "demo-lobby": 0.55, "demo-garage": 0.3}


def demo_events(days: int = 14, end: datetime | None = None, seed: int = 7,
                sources: Sequence[str] = DEMO_SOURCES, tz: tzinfo | None = None) -> list[PersonEvent]:
    """A deterministic, realistic demo: people per hour following an office building's day
    (arrivals at 8-9, lunch, leaving at 17-18; quieter weekends), the share of correctly worn
    masks rising over the period, for several cameras. Same (days, end, seed, sources, tz) ->
    same events. end: the last instant (default: now, to the hour); hours are local to tz
    (default: local_tz())."""
    tz = tz or local_tz()
    end = (end or datetime.now(timezone.utc)).astimezone(tz)
    end_hour = end.replace(minute=0, second=0, microsecond=0)
    start_day = (end_hour - timedelta(days=days - 1)).replace(hour=0)
    import numpy as np
    rng = np.random.default_rng(seed)
    out: list[PersonEvent] = []
    for d in range(days):
        day = (start_day + timedelta(days=d)).date()
        profile = WEEKEND_PROFILE if day.weekday() >= 5 else WEEKDAY_PROFILE
        progress = d / max(1, days - 1)
        p_mask = 0.6 + 0.2 * progress + rng.normal(0, 0.02)
        p_incorrect = 0.11 - 0.04 * progress
        for s in sources:
            scale = _DEMO_SCALE.get(s, 0.5) * (1 + rng.normal(0, 0.08))
            for hour in range(24):
                t0 = datetime(day.year, day.month, day.day, hour, tzinfo=tz).timestamp()
                n = int(rng.poisson(max(0.0, profile[hour] * scale)))
                if n == 0:
                    continue
                rush = hour in (8, 17)         # people in a hurry fix their masks less
                pm = min(0.95, max(0.05, p_mask - (0.06 if rush else 0)))
                pi = p_incorrect + (0.03 if rush else 0)
                labels = rng.choice(3, size=n, p=[pm, pi, 1 - pm - pi])
                first = t0 + rng.uniform(0, 3600, n)
                dur = np.clip(rng.lognormal(1.0, 0.5, n), 0.4, 30)
                conf = np.clip(rng.beta(14, 1.6, n), 0.5, 0.999)
                frames = np.maximum(3, (dur * rng.uniform(6, 15, n)).astype(int))
                out += [PersonEvent(first_seen=float(first[k]), last_seen=float(first[k] + dur[k]),
                                    label=("mask", "incorrect", "no_mask")[int(labels[k])],
                                    confidence=float(conf[k]), frames=int(frames[k]), source=s)
                        for k in range(n)]
    limit = end.timestamp()
    out = [e for e in out if e.first_seen <= limit]
    out.sort(key=lambda e: (e.first_seen, e.source))
    return out


def load_demo(store: EventStore, days: int = 14, end: datetime | None = None, seed: int = 7,
              tz: tzinfo | None = None) -> int:
    """Replace the events of a demo store (open_demo_store()) with a fresh seeded demo set.
    Returns the number of events written. A real store is refused (StoreError): demo data never
    goes into, nor deletes anything from, a database that holds real people."""
    if not store.demo:
        raise StoreError("Demo data goes into a demo store of its own, never into a real database.")
    events = demo_events(days=days, end=end, seed=seed, tz=tz)
    store.delete_sources(DEMO_SOURCES)
    n = 0
    for k in range(0, len(events), 5000):
        n += store.add_events(events[k:k + 5000])
    return n


def open_demo_store(days: int = 14, end: datetime | None = None, seed: int = 7,
                    tz: tzinfo | None = None) -> EventStore:
    """A store of its own for the demo: a SQLite file in a new temporary folder (removed when the
    process exits), filled with load_demo(). The configured database is never opened."""
    folder = Path(tempfile.mkdtemp(prefix="maskwatch-demo-"))
    atexit.register(shutil.rmtree, folder, True)
    store = open_store(config=StoreConfig(url=f"sqlite:///{(folder / 'demo.db').as_posix()}"),
                       demo=True)
    load_demo(store, days=days, end=end, seed=seed, tz=tz)
    return store
