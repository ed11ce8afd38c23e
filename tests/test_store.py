"""The people-event store: round trips on SQLite and a real PostgreSQL server, schema versions,
the background writer (batching, no loss on close, concurrent writers), and broken URLs."""
from __future__ import annotations

import csv
import io
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tests.support.data import ROOT
from pipeline import store as st
from pipeline.store import schema
from pipeline.store import (DEMO_SOURCES, SCHEMA_VERSION, StoreConfig, StoreError, demo_events,
                            load_demo, open_demo_store, open_store, redact, safe_url)
from pipeline.records import PersonEvent
T0 = datetime(2025, 3, 3, 8, 0, tzinfo=timezone.utc).timestamp()   # a Monday, 08:00 UTC


def ev(k, label="mask", source="door", t0=T0, frames=10):
    return PersonEvent(first_seen=t0 + 60 * k + 0.123456, last_seen=t0 + 60 * k + 4.5,
                       label=label, confidence=0.5 + (k % 50) / 100, frames=frames, source=source)


# --------------------------------------------------------------------------- fixtures
def _reset(url):
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        schema.metadata.drop_all(conn)
    eng.dispose()


@pytest.fixture
def pg(pg_url):
    _reset(pg_url)
    return pg_url


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'events.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    url = request.getfixturevalue("pg_url")
    _reset(url)
    return url


# ------------------------------------------------------------------------- round trip
def test_round_trip(any_url):
    s = open_store(any_url)
    events = [ev(k, label=("mask", "no_mask", "incorrect")[k % 3], source=("door", "lobby")[k % 2])
              for k in range(150)]                       # 150 minutes from 08:00
    w = s.writer(interval_s=60, batch_size=1000)
    for e in events:
        w.add(e)
    assert w.close() == 0 and w.written == 150
    s.close()

    s = open_store(any_url)                              # reopen: the schema is kept, not redone
    got = s.events()
    assert len(got) == 150
    for a, b in zip(got, events):
        assert a.first_seen == datetime.fromtimestamp(b.first_seen, timezone.utc)
        assert a.last_seen == datetime.fromtimestamp(b.last_seen, timezone.utc)
        assert (a.label, a.source, a.frames) == (b.label, b.source, b.frames)
        assert a.confidence == pytest.approx(b.confidence)
    assert s.count() == {"mask": 50, "no_mask": 50, "incorrect": 50}
    assert s.sources() == ["door", "lobby"]
    assert len(s.events(sources=["door"])) == 75
    start = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
    assert len(s.events(start=start, end=start + timedelta(hours=1))) == 60
    hourly = s.hourly_counts()
    assert sum(n for _, _, n in hourly) == 150
    assert {t.hour for t, _, _ in hourly} == {8, 9, 10}
    assert sum(n for t, _, n in hourly if t.hour == 10) == 30
    per_day = s.counts_by("day")
    assert list(per_day) == [datetime(2025, 3, 3, tzinfo=timezone.utc)]
    assert per_day[datetime(2025, 3, 3, tzinfo=timezone.utc)] == {"mask": 50, "no_mask": 50, "incorrect": 50}
    share = s.share_masked("hour")
    assert [round(x, 3) for _, x, _ in share] == [0.333, 0.333, 0.333]
    recent = s.recent(5)
    assert [r.first_seen for r in recent] == sorted((r.first_seen for r in recent), reverse=True)
    assert recent[0].first_seen == got[-1].first_seen
    rows = list(csv.DictReader(io.StringIO(s.export_csv(sources=["lobby"]))))
    assert len(rows) == 75 and set(rows[0]) == set(st.CSV_COLUMNS)
    assert rows[0]["first_seen_utc"].endswith("Z") and rows[0]["source"] == "lobby"
    assert s.time_bounds()[0] == got[0].first_seen
    s.close()


def test_nothing_but_counts_labels_and_times_is_stored(sqlite_url):
    s = open_store(sqlite_url)
    cols = {c["name"] for c in sa.inspect(s.engine).get_columns("people_events")}
    assert cols == {"id", "first_seen", "last_seen", "label", "confidence", "source", "frames"}
    assert set(sa.inspect(s.engine).get_table_names()) == {"people_events", "schema_version",
                                                           "people_hourly", "people_hourly_all"}
    cols = {c["name"] for c in sa.inspect(s.engine).get_columns("people_hourly")}
    assert cols == {"hour", "source", "label", "people"}          # counts only
    cols = {c["name"] for c in sa.inspect(s.engine).get_columns("people_hourly_all")}
    assert cols == {"hour", "label", "people"}
    s.close()


def test_sqlite_uses_wal_and_the_data_dir_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("MASKWATCH_DB_URL", raising=False)
    monkeypatch.setenv("MASKWATCH_DATA_DIR", str(tmp_path / "new" / "data"))
    s = open_store()
    assert (tmp_path / "new" / "data" / "maskwatch.db").exists()
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    s.close()
    monkeypatch.setenv("MASKWATCH_DB_URL", f"sqlite:///{tmp_path / 'other.db'}")
    assert StoreConfig().resolved_url().endswith("other.db")


# ---------------------------------------------------------------------------- schema
def test_schema_is_versioned_and_migrated(sqlite_url):
    eng = sa.create_engine(sqlite_url)
    with eng.begin() as conn:                 # a database made by the first release (v1)
        schema.schema_version.create(conn)
        schema.MIGRATIONS[0](conn)
        conn.execute(sa.insert(schema.schema_version).values(version=1, applied_at=datetime(2025, 1, 1)))
    eng.dispose()
    s = open_store(sqlite_url)
    with s.engine.connect() as conn:
        versions = [r[0] for r in conn.execute(sa.select(schema.schema_version.c.version).order_by(
            schema.schema_version.c.version))]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    idx = {i["name"] for i in sa.inspect(s.engine).get_indexes("people_events")}
    assert "ix_people_events_source_first_seen" in idx
    assert schema.migrate(s.engine) == SCHEMA_VERSION        # idempotent
    with s.engine.begin() as conn:                       # a newer app wrote this database
        conn.execute(sa.insert(schema.schema_version).values(version=SCHEMA_VERSION + 1,
                                                         applied_at=datetime(2030, 1, 1)))
    s.close()
    with pytest.raises(StoreError, match="newer than this"):
        open_store(sqlite_url)


# --------------------------------------------------------------------------- writer
def test_writer_flushes_on_size_and_interval(sqlite_url):
    s = open_store(sqlite_url)
    w = s.writer(interval_s=0.3, batch_size=10)
    for k in range(25):
        w.add(ev(k))
    deadline = time.monotonic() + 5
    while len(s.events()) < 20 and time.monotonic() < deadline:   # two full batches at once
        time.sleep(0.02)
    assert len(s.events()) >= 20
    time.sleep(0.8)                                  # the last 5 go after the interval
    assert len(s.events()) == 25 and w.written == 25
    assert w.flush() and w.close() == 0
    with pytest.raises(RuntimeError):
        w.add(ev(99))
    s.close()


def test_close_loses_nothing_buffered(any_url):
    s = open_store(any_url)
    w = s.writer(interval_s=3600, batch_size=100_000)
    for k in range(777):
        w.add(ev(k))
    assert s.events() == []                          # all still buffered
    assert w.close() == 0
    assert len(s.events()) == 777
    s.close()


def test_close_that_times_out_does_not_claim_everything_was_saved(sqlite_url, tmp_path):
    """close() gives up waiting after its timeout; it must then count the events not written
    yet as unsaved (it returned 0: a writer process exited 0 and lost them)."""
    import sqlite3
    s = open_store(sqlite_url)
    w = s.writer(interval_s=3600, batch_size=100_000)
    for k in range(5):
        w.add(ev(k))
    other = sqlite3.connect(str(tmp_path / "events.db"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")              # another writer holds the database
    try:
        assert w.close(timeout=0.5) == 5
    finally:
        other.execute("COMMIT")
        other.close()
    w._thread.join(60)                            # the lock is free: the thread writes them
    assert len(s.events()) == 5
    s.close()


def test_writer_keeps_events_while_the_database_fails(sqlite_url):
    s = open_store(sqlite_url)
    w = s.writer(interval_s=0.1, batch_size=1000)
    with s.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE people_events")       # the database breaks
    for k in range(30):
        w.add(ev(k))
    assert not w.flush(timeout=10)
    assert w.last_error and "people_events" in w.last_error
    with s.engine.begin() as conn:                             # it is repaired
        schema.people_events.create(conn, checkfirst=True)
    assert w.flush(timeout=10) and w.last_error is None
    assert w.close() == 0 and len(s.events()) == 30
    s.close()


def _threads_write(url, n_writers=2, n=400):
    def work(name):
        s = open_store(url)
        w = s.writer(interval_s=0.05, batch_size=17)
        for k in range(n):
            w.add(ev(k, source=name))
            if k % 50 == 0:
                time.sleep(0.005)
        w.close()
        s.close()
    threads = [threading.Thread(target=work, args=(f"cam{i}",)) for i in range(n_writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)


WRITER_SCRIPT = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from pipeline.store import open_store
from pipeline.records import PersonEvent
s = open_store(sys.argv[2])
w = s.writer(interval_s=0.02, batch_size=13)
for k in range(int(sys.argv[4])):
    w.add(PersonEvent(1.7e9 + k, 1.7e9 + k + 2, "no_mask", 0.9, 5, sys.argv[3]))
sys.exit(w.close())
"""


def _processes_write(url, n_writers=2, n=300):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(ROOT), url, f"proc{i}", str(n)])
             for i in range(n_writers)]
    assert [p.wait(180) for p in procs] == [0] * n_writers


def test_two_writers_at_once_lose_nothing(any_url):
    """Two processes start on an empty database at the same moment (both create/migrate the
    schema: BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL) and write; then two
    threads with their own connections write at once."""
    _processes_write(any_url, 2, 300)
    _threads_write(any_url, 2, 400)
    s = open_store(any_url)
    per_source = {src: len(s.events(sources=[src])) for src in s.sources()}
    assert per_source == {"cam0": 400, "cam1": 400, "proc0": 300, "proc1": 300}
    with s.engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(schema.schema_version)).scalar()
    assert n == SCHEMA_VERSION
    s.close()


def test_writers_opening_a_new_file_at_once_all_get_in():
    """Many writers open the same NEW SQLite file at the same moment, again and again: each
    switches it to WAL, creates/migrates the schema and writes. None may fail, nothing may be
    lost or doubled, and the schema is made once. (Two writers switching a new file to WAL at
    once made one fail at once with 'database is locked', whatever the busy timeout.)"""
    import tempfile
    n_writers, rounds, per_writer = 8, 12, 5
    for r in range(rounds):
        url = f"sqlite:///{tempfile.mkdtemp(prefix='mw-race-')}/events.db"
        barrier = threading.Barrier(n_writers)
        errors = []

        def work(i):
            barrier.wait()
            try:
                s = open_store(url)
                s.add_events([ev(k, source=f"w{i}") for k in range(per_writer)])
                s.close()
            except Exception as e:
                errors.append(f"{type(e).__name__}: {e}")
        threads = [threading.Thread(target=work, args=(i,)) for i in range(n_writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [], f"round {r}: {errors}"
        s = open_store(url)
        assert {src: len(s.events(sources=[src])) for src in s.sources()} == {
            f"w{i}": per_writer for i in range(n_writers)}
        with s.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(schema.schema_version)).scalar() \
                == SCHEMA_VERSION
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        s.close()


def test_switch_to_wal_waits_for_a_writer_holding_a_new_file(tmp_path):
    """The race above, made certain: another connection holds the write lock of a new file
    (as a second writer's migration does) while this one switches it to WAL. SQLite answers
    'database is locked' at once there (no busy handler for a lock upgrade); open_store must
    wait for the lock like any other write, not fail."""
    import sqlite3
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    try:
        s = open_store(f"sqlite:///{path}")
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        s.close()
    finally:
        release.join()
        other.close()


# ----------------------------------------------------------------------- broken URLs
@pytest.mark.parametrize("url, words", [
    ("postgresql+psycopg2://watch:s3cret@127.0.0.1:1/maskwatch", "Cannot reach the database"),
    ("postgresql+psycopg2://watch:s3cret@127.0.0.1:1/maskwatch?password=s3cret-q&sslpassword=s3cret-ssl",
     "Cannot reach the database"),
    ("postgresql://watch:s3cret@[::1:1/maskwatch", "is not valid"),     # malformed: not a ValueError
    ("this is not a url", "is not valid"),
    ("sqlite:////no/such/folder/maskwatch.db", "does not exist"),
    ("mysql+pymysql://watch:s3cret@127.0.0.1:1/maskwatch", "driver"),
    ("nosuchdb://watch:s3cret@host/db", "No database dialect"),
    ("sqlite://", "in-memory"),
])
def test_broken_url_gives_a_clear_message(url, words):
    t = time.monotonic()
    with pytest.raises(StoreError) as err:
        open_store(url)
    msg = str(err.value)
    assert words in msg and "s3cret" not in msg and "Traceback" not in msg
    assert time.monotonic() - t < 15


@pytest.mark.parametrize("url, shown", [
    ("postgresql://u:pw@host/db?password=qsecret&sslpassword=sslsecret&application_name=cam",
     "postgresql://u:***@host/db?password=***&sslpassword=***&application_name=cam"),
    ("postgresql://u@host/db?access_token=tok123&sslkey=/k/key.pem&connect_timeout=5",
     "postgresql://u@host/db?access_token=***&sslkey=***&connect_timeout=5"),
    ("postgresql://a:x1@[::1:1/db", "postgresql://a:***@[::1:1/db"),          # does not parse
    ("mysql+pymysql://u:p@ss/w?rd@db.example/m", "mysql+pymysql://u:***@db.example/m"),
    ("sqlite:////srv/data/maskwatch.db", "sqlite:////srv/data/maskwatch.db"),
])
def test_safe_url_hides_every_secret(url, shown):
    assert safe_url(url) == shown
    for secret in ("qsecret", "sslsecret", "tok123", "p@ss/w?rd"):
        assert secret not in redact(f"could not connect with {url} (password {secret})", url) \
            or secret not in url


def test_unreachable_host_times_out_quickly():
    t = time.monotonic()
    with pytest.raises(StoreError, match="Cannot reach"):
        open_store(config=StoreConfig(url="postgresql://u@10.255.255.1:5432/x", connect_timeout_s=1))
    assert time.monotonic() - t < 10


# ------------------------------------------------------------------------------ demo
def test_demo_dataset_is_deterministic_and_realistic():
    end = datetime(2025, 3, 16, 20, 30, tzinfo=timezone.utc)
    a = demo_events(end=end, tz=timezone.utc)
    b = demo_events(end=end, tz=timezone.utc)
    assert a == b and len(a) > 3000
    assert demo_events(end=end, tz=timezone.utc, seed=8) != a
    days = {}
    for e in a:
        d = datetime.fromtimestamp(e.first_seen, timezone.utc)
        days.setdefault(d.date(), []).append(e)
        assert e.first_seen <= end.timestamp() and e.last_seen > e.first_seen
        assert e.label in ("mask", "no_mask", "incorrect") and 0.5 <= e.confidence < 1
    assert len(days) == 14 and min(days) == date(2025, 3, 3)
    assert {e.source for e in a} == set(DEMO_SOURCES)
    weekday = [len(v) for d, v in days.items() if d.weekday() < 5 and d != end.date()]
    weekend = [len(v) for d, v in days.items() if d.weekday() >= 5 and d != end.date()]
    assert min(weekday) > 1.5 * max(weekend)                       # quieter weekends
    hours = [0] * 24
    for e in a:
        hours[datetime.fromtimestamp(e.first_seen, timezone.utc).hour] += 1
    assert hours.index(max(hours)) in (8, 17) and hours[3] < hours[8] / 20   # morning rush
    first = [e for e in a if e.first_seen < a[0].first_seen + 3 * 86400]
    last = [e for e in a if e.first_seen > a[-1].first_seen - 3 * 86400]
    share = lambda es: sum(e.label == "mask" for e in es) / len(es)
    assert share(last) > share(first) + 0.05                       # masks catch on


def test_demo_goes_to_its_own_store_never_a_real_one(sqlite_url):
    s = open_store(sqlite_url)
    s.add_events([ev(k, source="front-door") for k in range(5)])
    s.add_events([ev(9, source="demo-entrance")])          # a real camera with that name
    end = datetime(2025, 3, 16, 20, 30, tzinfo=timezone.utc)
    with pytest.raises(StoreError, match="never into a real database"):
        load_demo(s, end=end, tz=timezone.utc)
    assert len(s.events()) == 6 and len(s.events(sources=["demo-entrance"])) == 1
    s.close()

    demo = open_demo_store(end=end, tz=timezone.utc)
    n = len(demo_events(end=end, tz=timezone.utc))
    assert demo.demo and demo.url != sqlite_url and len(demo.events()) == n
    assert load_demo(demo, end=end, tz=timezone.utc) == n          # again: replaced, not doubled
    assert len(demo.events()) == n
    per_day = demo.counts_by("day", tz=timezone.utc, sources=list(DEMO_SOURCES))
    assert sum(sum(r.values()) for r in per_day.values()) == n
    demo.close()
