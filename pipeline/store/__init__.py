"""A store of people events (one row per person seen), for the dashboard and the door camera.

What is stored, per person: when the face was first and last seen, the label (mask, no_mask,
incorrect), its confidence, the source (webcam, video, or a named camera) and the number of
frames. Never an image, a face crop, a box or anything else about the face.

Where: an embedded SQLite file by default, `<MASKWATCH_DATA_DIR>/maskwatch.db` (data folder
default ./data, which git ignores), in WAL mode so that the dashboard can read while cameras
write. Any SQLAlchemy URL works through MASKWATCH_DB_URL (or the `url` argument), e.g.
`postgresql://user:password@host/maskwatch`, so that several cameras can feed one database.

The schema is created and versioned by the app: a `schema_version` table holds the version, and
`migrate()` applies the missing steps of MIGRATIONS in order, in one transaction, under a lock.

Writes stay off the frame path: `BackgroundWriter` queues events and a thread writes them in
batches (every `flush_interval_s`, every `batch_size` events, on flush() and on close(); close
writes everything still buffered). A database that cannot be reached is a `StoreError` whose
text is meant for the user; callers show it and go on counting without logging.

Times: stored as naive UTC datetimes; returned as aware UTC datetimes.
"""
from __future__ import annotations

import atexit
import csv
import io
import logging
import math
import queue
import random
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from pipeline.settings import current as current_settings
from pipeline.records import PersonEvent
from pipeline.records import CLASSES

log = logging.getLogger("maskwatch.store")

DB_FILE_NAME = "maskwatch.db"
SCHEMA_VERSION = 3
DEMO_SOURCES: tuple[str, ...] = ("demo-entrance", "demo-lobby", "demo-garage")
CSV_COLUMNS: tuple[str, ...] = ("id", "first_seen_utc", "last_seen_utc", "label", "confidence",
                                "source", "frames")
MAX_SOURCE_LEN = 64


class StoreError(RuntimeError):
    """The store cannot be used. str(err) is a sentence for the user (password hidden)."""


@dataclass(frozen=True)
class StoreConfig:
    """Store settings.

    url: any SQLAlchemy URL; None -> MASKWATCH_DB_URL, else SQLite in data_dir.
    data_dir: folder of the default SQLite file; None -> MASKWATCH_DATA_DIR, else ./data.
    flush_interval_s: the background writer writes at least this often while events wait...
    batch_size: ... and at once when this many wait.
    max_buffer: events kept in memory while the database is failing; beyond, the oldest go.
    connect_timeout_s: how long a network database may take to answer a connection.
    """

    url: str | None = None
    data_dir: str | None = None
    flush_interval_s: float = 2.0
    batch_size: int = 200
    max_buffer: int = 100_000
    connect_timeout_s: float = 5.0

    def resolved_url(self) -> str:
        env = current_settings()
        url = self.url or env.db_url or ""
        if url.strip():
            return url.strip()
        folder = Path(self.data_dir or env.data_dir or "data")
        return f"sqlite:///{(folder.expanduser().resolve() / DB_FILE_NAME).as_posix()}"


@dataclass(frozen=True)
class StoredEvent:
    """One stored person. Times are aware UTC datetimes."""

    id: int
    first_seen: datetime
    last_seen: datetime
    label: str
    confidence: float
    source: str
    frames: int

    def as_row(self) -> dict:
        return {"id": self.id, "first_seen_utc": _iso(self.first_seen),
                "last_seen_utc": _iso(self.last_seen), "label": self.label,
                "confidence": round(self.confidence, 4), "source": self.source, "frames": self.frames}


# --------------------------------------------------------------------------------- schema
metadata = sa.MetaData()
schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", sa.DateTime, nullable=False),
)
people_events = sa.Table(
    "people_events", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("first_seen", sa.DateTime, nullable=False),
    sa.Column("last_seen", sa.DateTime, nullable=False),
    sa.Column("label", sa.String(16), nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("source", sa.String(MAX_SOURCE_LEN), nullable=False),
    sa.Column("frames", sa.Integer, nullable=False),
)
_ix_first_seen = sa.Index("ix_people_events_first_seen", people_events.c.first_seen)
_ix_source_time = sa.Index("ix_people_events_source_first_seen", people_events.c.source,
                           people_events.c.first_seen)


def _v1(conn) -> None:
    """v1: the events table, indexed by time."""
    people_events.create(conn, checkfirst=True)
    _ix_first_seen.create(conn, checkfirst=True)


def _v2(conn) -> None:
    """v2: an index on (source, first_seen) for the dashboard's source filter."""
    _ix_source_time.create(conn, checkfirst=True)


people_hourly = sa.Table(
    "people_hourly", metadata,
    sa.Column("hour", sa.DateTime, primary_key=True),
    sa.Column("source", sa.String(MAX_SOURCE_LEN), primary_key=True),
    sa.Column("label", sa.String(16), primary_key=True),
    sa.Column("people", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
)
people_hourly_all = sa.Table(
    "people_hourly_all", metadata,
    sa.Column("hour", sa.DateTime, primary_key=True),
    sa.Column("label", sa.String(16), primary_key=True),
    sa.Column("people", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
)
"""People per UTC hour and label, per source (people_hourly) and for all sources together
(people_hourly_all): kept by triggers on people_events (schema v3), so that the dashboard's
hourly and daily counts read one row per hour and label instead of one per person
(docs/SCALING.md)."""
_ix_hourly_source = sa.Index("ix_people_hourly_source_hour", people_hourly.c.source,
                             people_hourly.c.hour)
ROLLUP_DIALECTS = ("postgresql", "sqlite")

_PG_ROLLUP = (
    """CREATE OR REPLACE FUNCTION maskwatch_hourly_add() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO people_hourly (hour, source, label, people)
      SELECT date_trunc('hour', first_seen), source, label, count(*) FROM new_rows GROUP BY 1, 2, 3
      ORDER BY 1, 2, 3
      ON CONFLICT (hour, source, label) DO UPDATE SET people = people_hourly.people + EXCLUDED.people;
      INSERT INTO people_hourly_all (hour, label, people)
      SELECT date_trunc('hour', first_seen), label, count(*) FROM new_rows GROUP BY 1, 2
      ORDER BY 1, 2     -- rows locked in one order by every writer: no deadlock between cameras
      ON CONFLICT (hour, label) DO UPDATE SET people = people_hourly_all.people + EXCLUDED.people;
      RETURN NULL;
    END $$""",
    """CREATE OR REPLACE FUNCTION maskwatch_hourly_remove() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE people_hourly h SET people = h.people - d.n
      FROM (SELECT date_trunc('hour', first_seen) AS hour, source, label, count(*) AS n
            FROM old_rows GROUP BY 1, 2, 3) d
      WHERE h.hour = d.hour AND h.source = d.source AND h.label = d.label;
      DELETE FROM people_hourly h USING (SELECT DISTINCT date_trunc('hour', first_seen) AS hour,
            source, label FROM old_rows) d
      WHERE h.hour = d.hour AND h.source = d.source AND h.label = d.label AND h.people <= 0;
      UPDATE people_hourly_all h SET people = h.people - d.n
      FROM (SELECT date_trunc('hour', first_seen) AS hour, label, count(*) AS n
            FROM old_rows GROUP BY 1, 2) d
      WHERE h.hour = d.hour AND h.label = d.label;
      DELETE FROM people_hourly_all h USING (SELECT DISTINCT date_trunc('hour', first_seen) AS hour,
            label FROM old_rows) d
      WHERE h.hour = d.hour AND h.label = d.label AND h.people <= 0;
      RETURN NULL;
    END $$""",
    """CREATE TRIGGER people_events_hourly_add AFTER INSERT ON people_events
       REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION maskwatch_hourly_add()""",
    """CREATE TRIGGER people_events_hourly_remove AFTER DELETE ON people_events
       REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION maskwatch_hourly_remove()""",
)
_SQLITE_HOUR = "strftime('%Y-%m-%d %H:00:00.000000', {})"     # SQLAlchemy's SQLite DateTime text
_SQLITE_ROLLUP = (
    f"""CREATE TRIGGER people_events_hourly_add AFTER INSERT ON people_events BEGIN
      INSERT INTO people_hourly (hour, source, label, people)
      VALUES ({_SQLITE_HOUR.format("NEW.first_seen")}, NEW.source, NEW.label, 1)
      ON CONFLICT (hour, source, label) DO UPDATE SET people = people + 1;
      INSERT INTO people_hourly_all (hour, label, people)
      VALUES ({_SQLITE_HOUR.format("NEW.first_seen")}, NEW.label, 1)
      ON CONFLICT (hour, label) DO UPDATE SET people = people + 1;
    END""",
    f"""CREATE TRIGGER people_events_hourly_remove AFTER DELETE ON people_events BEGIN
      UPDATE people_hourly SET people = people - 1 WHERE hour = {_SQLITE_HOUR.format("OLD.first_seen")}
        AND source = OLD.source AND label = OLD.label;
      DELETE FROM people_hourly WHERE hour = {_SQLITE_HOUR.format("OLD.first_seen")}
        AND source = OLD.source AND label = OLD.label AND people <= 0;
      UPDATE people_hourly_all SET people = people - 1
        WHERE hour = {_SQLITE_HOUR.format("OLD.first_seen")} AND label = OLD.label;
      DELETE FROM people_hourly_all WHERE hour = {_SQLITE_HOUR.format("OLD.first_seen")}
        AND label = OLD.label AND people <= 0;
    END""",
)


def _v3(conn) -> None:
    """v3: the hourly rollup (people_hourly), filled from the events and kept by triggers
    (PostgreSQL and SQLite; other databases count from the events)."""
    dialect = conn.dialect.name
    if dialect not in ROLLUP_DIALECTS:
        return
    people_hourly.create(conn, checkfirst=True)
    people_hourly_all.create(conn, checkfirst=True)
    _ix_hourly_source.create(conn, checkfirst=True)
    for ddl in (_PG_ROLLUP if dialect == "postgresql" else _SQLITE_ROLLUP):
        conn.exec_driver_sql(ddl)
    hour = (sa.func.date_trunc("hour", people_events.c.first_seen) if dialect == "postgresql"
            else sa.literal_column(_SQLITE_HOUR.format("first_seen")))
    conn.execute(sa.insert(people_hourly).from_select(
        ["hour", "source", "label", "people"],
        sa.select(hour, people_events.c.source, people_events.c.label, sa.func.count())
        .group_by(hour, people_events.c.source, people_events.c.label)))
    h = people_hourly.c
    conn.execute(sa.insert(people_hourly_all).from_select(
        ["hour", "label", "people"],
        sa.select(h.hour, h.label, sa.func.sum(h.people)).group_by(h.hour, h.label)))


MIGRATIONS = (_v1, _v2, _v3)
"""MIGRATIONS[k] takes the schema from version k to k + 1."""
assert len(MIGRATIONS) == SCHEMA_VERSION


def _schema_version(conn) -> int:
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0)


def migrate(engine: Engine) -> int:
    """Bring the schema to SCHEMA_VERSION (creating it in an empty database). Safe to call from
    several processes at once. Returns the version. StoreError if the database is newer."""
    with engine.connect().execution_options(maskwatch_immediate=True) as conn:
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(731173)"))
            elif conn.dialect.name in ("mysql", "mariadb"):
                conn.execute(sa.text("SELECT GET_LOCK('maskwatch_migrate', 30)"))
            schema_version.create(conn, checkfirst=True)
            current = _schema_version(conn)
            if current > SCHEMA_VERSION:
                raise StoreError(f"The database has schema version {current}, newer than this "
                                 f"MaskWatch ({SCHEMA_VERSION}). Update MaskWatch to use it.")
            for v in range(current, SCHEMA_VERSION):
                MIGRATIONS[v](conn)
                conn.execute(sa.insert(schema_version).values(version=v + 1, applied_at=_utc_naive(None)))
                log.info("database schema migrated to version %d", v + 1)
            if conn.dialect.name in ("mysql", "mariadb"):
                conn.execute(sa.text("SELECT RELEASE_LOCK('maskwatch_migrate')"))
    return SCHEMA_VERSION


# ------------------------------------------------------------------------------ helpers
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|auth|cred|signature|^sig$", re.I)
HIDDEN = "***"


def _url_parts(url: str) -> tuple[str, str, str, str]:
    """(scheme://, userinfo, rest of the authority and path, ?query) by plain string cutting, so
    that a URL that does not parse is still taken apart. The userinfo ends at the last '@'
    before the query (a password may hold '@', '/' or '?'), the query at the first '?' after it."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    else:
        scheme += sep
    at = rest.rfind("@")
    while at >= 0:
        q = rest.find("?", 0, at)
        if q < 0 or "=" not in rest[q:at]:
            break
        at = rest.rfind("@", 0, q)          # this '@' sits in a query value (?user=a@b)
    userinfo, rest = (rest[:at + 1], rest[at + 1:]) if at >= 0 else ("", rest)
    q = rest.find("?")
    path, query = (rest[:q], rest[q:]) if q >= 0 else (rest, "")
    return scheme, userinfo, path, query


def _secrets(url: str) -> list[str]:
    """The secret values in a URL: the password and every password/token-like query value."""
    from urllib.parse import unquote
    _, userinfo, _, query = _url_parts(str(url))
    found = []
    if ":" in userinfo:
        found.append(userinfo[userinfo.index(":") + 1:-1])
    for part in re.split(r"[&;]", query[1:]):
        key, eq, value = part.partition("=")
        if eq and value and _SECRET_KEY.search(unquote(key)):
            found.append(value)
    out = []
    for v in found:
        for form in (v, unquote(v)):
            if form and form not in out:
                out.append(form)
    return sorted(out, key=len, reverse=True)


def safe_url(url: str) -> str:
    """The URL for messages, with every secret hidden: the password, and the value of any query
    parameter named like a password, secret, token or key (password=, sslpassword=,
    access_token=, ...). Works on URLs that do not parse, too. The one redaction of MaskWatch:
    every URL that reaches a message (the CLI, the pages, the log) goes through it or redact()."""
    scheme, userinfo, path, query = _url_parts(str(url))
    if ":" in userinfo:
        userinfo = userinfo[:userinfo.index(":")] + ":" + HIDDEN + "@"
    if query:
        parts = re.split(r"([&;])", query[1:])
        for i in range(0, len(parts), 2):
            key, eq, value = parts[i].partition("=")
            if eq and value and _SECRET_KEY.search(key):
                parts[i] = f"{key}={HIDDEN}"
        query = "?" + "".join(parts)
    return scheme + userinfo + path + query


def redact(text: str, url: str | None) -> str:
    """text with the URL shown as safe_url(url) and any secret of the URL hidden (a driver's
    message may quote the URL or a part of it)."""
    text = str(text)
    if not url:
        return text
    text = text.replace(str(url), safe_url(url))
    for secret in _secrets(url):
        if len(secret) >= 3:          # a 1-2 character password would blank out ordinary words
            text = text.replace(secret, HIDDEN)
    return text


def _reason(e: BaseException, url: str | None = None) -> str:
    orig = getattr(e, "orig", None) or e
    text = str(orig).strip().splitlines()
    return redact((text[0] if text else type(orig).__name__)[:300], url)


def _utc_naive(t) -> datetime:
    """UNIX seconds, aware datetime, naive UTC datetime or None (now) -> naive UTC datetime."""
    if t is None:
        return datetime.now(timezone.utc).replace(tzinfo=None)
    if isinstance(t, (int, float)):
        return datetime.fromtimestamp(float(t), tz=timezone.utc).replace(tzinfo=None)
    if isinstance(t, datetime):
        return t.astimezone(timezone.utc).replace(tzinfo=None) if t.tzinfo else t
    raise TypeError(f"not a time: {t!r}")


def _aware(t: datetime) -> datetime:
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def _iso(t: datetime) -> str:
    return _aware(t).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


SQLITE_BUSY_TIMEOUT_S = 30.0


def _set_wal(cur, wait_s: float = SQLITE_BUSY_TIMEOUT_S) -> None:
    """Switch the file to WAL, retrying while another connection holds it.

    Several writers that open a NEW file at the same moment all switch it to WAL. The switch
    reads the file header and then upgrades to a write lock, and SQLite does not call the busy
    handler for a connection that already holds a read lock (waiting could deadlock): one of
    them gets "database is locked" at once, whatever busy_timeout says. So back off and try
    again (the statement's read lock is released in between) until the busy timeout runs out."""
    import sqlite3
    deadline = time.monotonic() + wait_s
    delay = 0.005
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL").fetchall()
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e).lower() or time.monotonic() >= deadline:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(0.2, delay * 2)


def _sqlite_setup(engine: Engine) -> None:
    """WAL, a busy timeout, and real transactions (BEGIN, or BEGIN IMMEDIATE for migrations)."""

    @sa_event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None          # the driver's own BEGIN handling off
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            _set_wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
        finally:
            cur.close()

    @sa_event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get("maskwatch_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engine(url: str, connect_timeout_s: float = 5.0) -> Engine:
    """An engine for the URL, configured per dialect. Raises StoreError for a bad URL/driver."""
    try:
        u = make_url(url)
    except (ArgumentError, ValueError, TypeError):   # e.g. postgresql://a:x@[::1:1/db
        raise StoreError(f"The database URL {safe_url(url)!r} is not valid. Expected e.g. "
                         "sqlite:///data/maskwatch.db or postgresql://user:password@host/maskwatch."
                         ) from None
    u = _installed_driver(u)
    kwargs: dict = {}
    backend = u.get_backend_name()
    if backend == "sqlite":
        db = u.database or ""
        if db in ("", ":memory:") or db.startswith("file:"):
            raise StoreError("An in-memory SQLite database cannot be shared with the writer thread; "
                             "give a file, e.g. sqlite:///data/maskwatch.db.")
        folder = Path(db).expanduser().resolve().parent
        if not folder.is_dir():
            raise StoreError(f"Cannot open the database {safe_url(url)}: the folder {folder} does "
                             "not exist.")
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    elif backend == "postgresql":
        kwargs["pool_pre_ping"] = True
        if u.get_driver_name() in ("psycopg2", "psycopg"):
            kwargs["connect_args"] = {"connect_timeout": max(1, int(math.ceil(connect_timeout_s)))}
    elif backend in ("mysql", "mariadb"):
        kwargs["pool_pre_ping"] = True
        kwargs["pool_recycle"] = 3600
        kwargs["connect_args"] = {"connect_timeout": max(1, int(math.ceil(connect_timeout_s)))}
    try:
        engine = sa.create_engine(u, **kwargs)
    except NoSuchModuleError:
        raise StoreError(f"No database dialect for {safe_url(url)}: use sqlite://, "
                         "postgresql:// or mysql+pymysql:// URLs.") from None
    except ImportError as e:
        raise StoreError(f"The database driver for {backend} is not installed ({e.name or e}); "
                         f"install it, e.g. pip install {_driver_hint(backend)}.") from None
    except (ArgumentError, TypeError, ValueError) as e:
        raise StoreError(f"The database URL {safe_url(url)} is not usable: {redact(e, url)}") from None
    if backend == "sqlite":
        _sqlite_setup(engine)
    return engine


def _importable(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(name) is not None


def _installed_driver(u):
    """A URL without a driver (postgresql://, mysql://) gets one that is installed: SQLAlchemy's
    default for postgresql is psycopg 3 and for mysql mysqlclient, while MaskWatch ships
    psycopg2-binary; a URL that names its driver is left alone."""
    if u.drivername == "postgresql" and not _importable("psycopg") and _importable("psycopg2"):
        return u.set(drivername="postgresql+psycopg2")
    if u.drivername in ("mysql", "mariadb") and not _importable("MySQLdb") and _importable("pymysql"):
        return u.set(drivername=f"{u.drivername}+pymysql")
    return u


def _driver_hint(backend: str) -> str:
    return {"postgresql": "psycopg2-binary", "mysql": "pymysql", "mariadb": "pymysql"}.get(backend, "the driver")


# ---------------------------------------------------------------------------------- store
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
                             f"{_reason(e, self.url)}") from None

    # -------------------------------------------------------------------------- writing
    def add_events(self, events: Iterable[PersonEvent]) -> int:
        """Insert events (PersonEvent, times in UNIX seconds) in one transaction."""
        rows = [{"first_seen": _utc_naive(e.first_seen), "last_seen": _utc_naive(e.last_seen),
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
            cond.append(c.first_seen >= _utc_naive(start))
        if end is not None:
            cond.append(c.first_seen < _utc_naive(end))
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
                return [StoredEvent(r.id, _aware(r.first_seen), _aware(r.last_seen), r.label,
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
            return None if lo is None else (_aware(lo), _aware(hi))
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
        lo = None if start is None else _utc_naive(start)
        hi = None if end is None else _utc_naive(end)
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
                key = (_aware(t), label)
                acc[key] = acc.get(key, 0) + int(n)
        else:
            q = sa.select(people_events.c.first_seen, people_events.c.label).where(where)
            for t, label in conn.execute(q):
                key = (_aware(t).replace(minute=0, second=0, microsecond=0), label)
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
        for t, label, n in self.hourly_counts(start, end, sources):
            local = t.astimezone(tz)
            key = local if bucket == "hour" else datetime(local.year, local.month, local.day, tzinfo=tz)
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
        raise StoreError(f"Cannot reach the database {safe_url(resolved)}: {_reason(e, resolved)}") from None
    except ImportError as e:   # a driver imported lazily on first connect
        engine.dispose()
        raise StoreError(f"The database driver is not installed ({e.name or e}).") from None
    except (ValueError, TypeError, OSError) as e:   # a driver rejecting a part of the URL
        engine.dispose()
        raise StoreError(f"Cannot use the database {safe_url(resolved)}: {_reason(e, resolved)}") from None
    return EventStore(engine, resolved, cfg, demo=demo)


# ------------------------------------------------------------------------- background writer
class _Flush:
    def __init__(self):
        self.done = threading.Event()


_STOP = object()


class BackgroundWriter:
    """Events in, batched inserts out, on a thread of its own.

    add(event) never blocks on the database. The thread writes when `batch_size` events wait,
    when the oldest waiting event is `interval_s` old, on flush() and on close(). A failed write
    keeps the batch and retries at the next interval (last_error says why; at most max_buffer
    events are kept, the oldest beyond are counted in `dropped`). close() writes what is left
    (retrying a few times) and returns the number of events that could not be saved.
    """

    def __init__(self, store: EventStore, interval_s: float = 2.0, batch_size: int = 200,
                 max_buffer: int = 100_000, close_retries: int = 3):
        self.store = store
        self.interval_s = float(interval_s)
        self.batch_size = max(1, int(batch_size))
        self.max_buffer = max(1, int(max_buffer))
        self.close_retries = close_retries
        self.added = 0
        self.written = 0
        self.dropped = 0
        self.unsaved = 0
        self.last_error: str | None = None
        self._q: queue.Queue = queue.Queue()
        self._pending: list = []
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="maskwatch-store-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def add(self, event: PersonEvent) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the writer is closed")
            self.added += 1
            self._q.put(event)

    __call__ = add

    def add_many(self, events: Iterable[PersonEvent]) -> None:
        for e in events:
            self.add(e)

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything added so far; True when done (False on timeout or a failed write)."""
        with self._lock:
            if self._closed:
                return True
            f = _Flush()
            self._q.put(f)
        return f.done.wait(timeout) and self.last_error is None

    def close(self, timeout: float = 60.0) -> int:
        """Write what is buffered and stop the thread. Returns the events not saved."""
        with self._lock:
            if self._closed:
                return self.unsaved
            self._closed = True
            self._q.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():      # still writing: what is not written yet is not saved
            self.unsaved = max(self.unsaved, self.added - self.written)
            log.warning("the store writer did not finish within %.0f s; %d people not saved yet",
                        timeout, self.unsaved)
            return self.unsaved
        try:
            atexit.unregister(self.close)
        except Exception:
            pass
        return self.unsaved

    @property
    def closed(self) -> bool:
        return self._closed

    def _write(self, pending: list) -> bool:
        if not pending:
            return True
        try:
            self.store.add_events(pending)
        except Exception as e:   # StoreError, or anything a broken driver raises
            msg = str(e) if isinstance(e, StoreError) else f"{type(e).__name__}: {redact(e, self.store.url)}"
            if msg != self.last_error:
                log.warning("could not save %d people events: %s", len(pending), msg)
            self.last_error = msg
            if len(pending) > self.max_buffer:
                self.dropped += len(pending) - self.max_buffer
                del pending[: len(pending) - self.max_buffer]
            return False
        self.written += len(pending)
        pending.clear()
        self.last_error = None
        return True

    def _run(self) -> None:
        pending: list[PersonEvent] = []
        self._pending = pending           # for close(), when it times out
        due: float | None = None          # when the waiting events must be written
        while True:
            timeout = None if due is None else max(0.0, due - time.monotonic())
            try:
                item = self._q.get(timeout=timeout)
            except queue.Empty:
                item = None
            if isinstance(item, PersonEvent):
                pending.append(item)
                if due is None:
                    due = time.monotonic() + self.interval_s
                if len(pending) >= self.batch_size:
                    self._drain(pending)
                    ok = self._write(pending)
                    due = None if ok else time.monotonic() + self.interval_s
            elif isinstance(item, _Flush):
                self._drain(pending)
                ok = self._write(pending)
                due = None if ok else time.monotonic() + self.interval_s
                item.done.set()
            elif item is _STOP:
                self._drain(pending)
                for k in range(self.close_retries):
                    if self._write(pending):
                        break
                    time.sleep(min(1.0, 0.2 * (k + 1)))
                self.unsaved = len(pending) + self.dropped
                return
            else:   # interval elapsed
                ok = self._write(pending)
                due = None if ok or not pending else time.monotonic() + self.interval_s

    def _drain(self, pending: list) -> None:
        """Move events already queued (not flush/stop markers) into pending."""
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, PersonEvent):
                pending.append(item)
            else:   # a marker: put it back at the end; it is handled in order later
                self._q.put(item)
                return


# ----------------------------------------------------------------------------- demo data
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


def local_tz() -> tzinfo:
    """The building's time zone for days and hours: MASKWATCH_TZ (an IANA name such as
    Europe/Paris) when set and known, else the machine's local time zone."""
    name = current_settings().tz
    if name:
        try:
            from zoneinfo import ZoneInfo
            return ZoneInfo(name)
        except Exception:
            log.warning("MASKWATCH_TZ=%r is not a known time zone; using the local one", name)
    try:
        from zoneinfo import ZoneInfo
        key = Path("/etc/timezone").read_text().strip() if Path("/etc/timezone").is_file() else ""
        if key:
            return ZoneInfo(key)
    except Exception:
        pass
    return datetime.now().astimezone().tzinfo or timezone.utc


def day_range(first: date, last: date, tz: tzinfo | None = None) -> tuple[datetime, datetime]:
    """Local days first..last (inclusive) -> [start, end) as aware datetimes."""
    tz = tz or timezone.utc
    return (datetime(first.year, first.month, first.day, tzinfo=tz),
            datetime(last.year, last.month, last.day, tzinfo=tz) + timedelta(days=1))
