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

The package, one module per job: `types` (StoreConfig, StoredEvent, StoreError), `schema`
(tables and migrations), `connection` (URLs, engines, secrets hidden), `events` (EventStore and
open_store: writes and the dashboard's queries), `writer` (BackgroundWriter), `demo` (demo data
in a store of its own), `times` (UTC storage, the building's time zone). The names below are the
store's public API; import them from `pipeline.store`.
"""
from pipeline.store.connection import create_engine, redact, safe_url
from pipeline.store.demo import WEEKDAY_PROFILE, WEEKEND_PROFILE, demo_events, load_demo, open_demo_store
from pipeline.store.events import EventStore, open_store
from pipeline.store.schema import MIGRATIONS, migrate
from pipeline.store.times import day_range, local_tz
from pipeline.store.types import (CSV_COLUMNS, DB_FILE_NAME, DEMO_SOURCES, MAX_SOURCE_LEN, SCHEMA_VERSION,
                                  StoreConfig, StoredEvent, StoreError)
from pipeline.store.writer import BackgroundWriter

__all__ = [
    "BackgroundWriter", "CSV_COLUMNS", "DB_FILE_NAME", "DEMO_SOURCES", "EventStore", "MAX_SOURCE_LEN",
    "MIGRATIONS", "SCHEMA_VERSION", "StoreConfig", "StoreError", "StoredEvent", "WEEKDAY_PROFILE",
    "WEEKEND_PROFILE", "create_engine", "day_range", "demo_events", "load_demo", "local_tz", "migrate",
    "open_demo_store", "open_store", "redact", "safe_url",
]
