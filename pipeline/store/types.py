"""The store's records and settings: StoreConfig, StoredEvent, StoreError and the fixed names."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


from pipeline.settings import current as current_settings
from pipeline.store.times import iso_utc

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
        return {"id": self.id, "first_seen_utc": iso_utc(self.first_seen),
                "last_seen_utc": iso_utc(self.last_seen), "label": self.label,
                "confidence": round(self.confidence, 4), "source": self.source, "frames": self.frames}
