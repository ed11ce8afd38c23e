"""Many cameras on one PostgreSQL: the hourly rollup (schema v3) gives the same counts as the
events, and N `watch`-like writers lose nothing (benchmarks/pg_load.py, short here; longer with
MASKWATCH_LOAD_SECONDS or `python -m benchmarks.pg_load --long`)."""
from __future__ import annotations

import os
import signal
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from tests.support.data import ROOT
from pipeline import store as st
from pipeline.store import schema
from pipeline.store import open_store
from pipeline.people.tracker import PersonEvent

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=timezone.utc).timestamp()   # a Monday, 06:00 UTC


def _fresh(url):
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        schema.metadata.drop_all(conn)
    eng.dispose()
    return open_store(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = _fresh(url) if request.param == "postgresql" else open_store(url)
    yield s
    s.close()


def _events(n=400, sources=("door", "lobby", "garage"), seed=3):
    import numpy as np
    rng = np.random.default_rng(seed)
    t = T0 + np.sort(rng.uniform(0, 3 * 86400, n))
    return [PersonEvent(first_seen=float(x), last_seen=float(x) + 3, label=("mask", "no_mask", "incorrect")[k % 3],
                        confidence=0.9, frames=10, source=sources[k % len(sources)]) for k, x in enumerate(t)]


def _from_events(store, start, end, sources):
    """The same counts straight from the events (the rollup switched off)."""
    store._rollup, keep = False, store._rollup
    try:
        return store.hourly_counts(start, end, sources)
    finally:
        store._rollup = keep


RANGES = [(None, None), (T0, T0 + 86400), (T0 + 1800, T0 + 2 * 86400 + 900),   # half hours too
          (T0 + 600, T0 + 1200), (T0 + 86400 + 3599, None)]


def test_hourly_rollup_gives_the_events_counts(store):
    store.add_events(_events())
    with store.engine.connect() as conn:
        assert store._has_rollup(conn)
        assert conn.execute(sa.select(sa.func.sum(schema.people_hourly.c.people))).scalar() == 400
        assert conn.execute(sa.select(sa.func.sum(schema.people_hourly_all.c.people))).scalar() == 400
    for start, end in RANGES:
        for sources in (None, ["door"], ["lobby", "garage"], ["garage", "door", "lobby"]):
            got = store.hourly_counts(start, end, sources)
            assert got == _from_events(store, start, end, sources), (start, end, sources)
    assert sum(store.count().values()) == 400
    assert store.count(T0 + 1800, T0 + 7200, ["door"]) == {
        k: sum(n for _, lab, n in _from_events(store, T0 + 1800, T0 + 7200, ["door"]) if lab == k)
        for k in ("mask", "no_mask", "incorrect")}
    # deleting a source takes its people out of the rollup too
    store.delete_sources(["lobby"])
    assert store.hourly_counts() == _from_events(store, None, None, None)
    assert store.hourly_counts(T0 + 1800, None, ["door", "garage"]) == _from_events(
        store, T0 + 1800, None, ["door", "garage"])
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(schema.people_hourly.c.source == "lobby")
                            .select_from(schema.people_hourly)).scalar() == 0


def test_migration_to_v3_backfills_the_rollup(store):
    """A v2 database that already holds events gets its rollup filled by the migration."""
    store.add_events(_events(120))
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS people_events_hourly_add" +
                             (" ON people_events" if store.dialect == "postgresql" else ""))
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS people_events_hourly_remove" +
                             (" ON people_events" if store.dialect == "postgresql" else ""))
        schema.people_hourly.drop(conn)
        schema.people_hourly_all.drop(conn)
        conn.execute(sa.delete(schema.schema_version).where(schema.schema_version.c.version == 3))
    store.add_events(_events(30, seed=9))        # written by a v2 MaskWatch meanwhile
    again = open_store(store.url)
    try:
        assert again.hourly_counts() == _from_events(again, None, None, None)
        assert sum(again.count().values()) == 150
    finally:
        again.close()


def test_sources_is_sorted_and_distinct(store):
    assert store.sources() == []
    store.add_events(_events(60, sources=("b-cam", "a-cam", "c-cam")))
    assert store.sources() == ["a-cam", "b-cam", "c-cam"]


# ---------------------------------------------------------------------------- load test
@pytest.mark.slow
def test_many_writers_lose_nothing_and_sigterm_flushes(pg_url, tmp_path):
    """N = 1, 4, 16 writer processes at a realistic and a 100x rate: nothing lost, nothing
    doubled; a writer stopped with SIGTERM mid-run (watch's handler) writes all it had."""
    import sys
    sys.path.insert(0, str(ROOT))
    from benchmarks import pg_load
    _fresh(pg_url).close()
    seconds = float(os.environ.get("MASKWATCH_LOAD_SECONDS", "3"))
    for n in (1, 4, 16):
        for name in ("realistic", "100x"):
            r = pg_load.run_phase(pg_url, n, pg_load.RATES[name], seconds, tmp_path)
            assert r["lost"] == 0 and r["duplicates"] == 0, r
            assert r["stored"] == r["sent"] > 0
            if name == "100x":    # the writers kept the rate (loaded machine: half of it at least)
                assert r["sent"] >= 0.5 * n * pg_load.RATES[name] * seconds, r
    r = pg_load.run_phase(pg_url, 16, pg_load.RATES["100x"], max(seconds, 4.0), tmp_path,
                          kill={"signal": signal.SIGTERM, "after": max(seconds, 4.0) / 2})
    victim = r["kill"]["victim"]
    assert victim["stopped"] and victim["sent"] > 0
    assert victim["stored"] == victim["sent"]            # its buffer was written on SIGTERM
    assert r["lost"] == 0 and r["duplicates"] == 0


@pytest.mark.slow
def test_sigkill_loses_at_most_the_flush_interval(pg_url, tmp_path):
    import sys
    sys.path.insert(0, str(ROOT))
    from benchmarks import pg_load
    rate, after = pg_load.RATES["100x"], 3.0
    r = pg_load.run_phase(pg_url, 2, rate, 6.0, tmp_path, kill={"signal": signal.SIGKILL, "after": after})
    victim = r["kill"]["victim"]
    lost = max(0, rate * after - victim["stored"])     # what it had sent, from its rate
    interval = st.StoreConfig().flush_interval_s
    assert lost <= rate * (interval + 1.0), r            # one flush interval (+ scheduling slack)
    assert r["lost"] == 0                                # the other writer lost nothing


def test_writer_close_that_times_out_reports_the_people_not_saved(tmp_path):
    """A backlog the database cannot take in time is reported as unsaved, not as 0."""
    import threading
    s = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    gate = threading.Event()
    real = s.add_events

    def slow(events):
        gate.wait(10)
        return real(events)
    s.add_events = slow
    w = s.writer(interval_s=0.05, batch_size=10)
    w.add_many(_events(50))
    assert w.close(timeout=0.5) > 0            # before: 0, while 50 people were not written
    gate.set()
    s.close()
