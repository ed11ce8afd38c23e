"""URLs and engines: secrets hidden from every message (safe_url, redact), the SQLAlchemy engine
with SQLite's WAL and busy-timeout set-up, and the driver hints."""
from __future__ import annotations

import logging
import math
import random
import re
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from pipeline.store.types import StoreError

log = logging.getLogger("maskwatch.store")

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


def error_reason(e: BaseException, url: str | None = None) -> str:
    orig = getattr(e, "orig", None) or e
    text = str(orig).strip().splitlines()
    return redact((text[0] if text else type(orig).__name__)[:300], url)


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
