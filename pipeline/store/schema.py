"""The tables, and their versioned migrations (schema_version table; MIGRATIONS applied in order, in
one transaction, under a lock), including the hourly rollups kept by triggers."""
from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.store.times import utc_naive
from pipeline.store.types import MAX_SOURCE_LEN, SCHEMA_VERSION, StoreError

log = logging.getLogger("maskwatch.store")

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
                conn.execute(sa.insert(schema_version).values(version=v + 1, applied_at=utc_naive(None)))
                log.info("database schema migrated to version %d", v + 1)
            if conn.dialect.name in ("mysql", "mariadb"):
                conn.execute(sa.text("SELECT RELEASE_LOCK('maskwatch_migrate')"))
    return SCHEMA_VERSION
