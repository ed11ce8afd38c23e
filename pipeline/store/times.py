"""Times: stored as naive UTC datetimes, returned as aware UTC; the building's time zone and day
ranges for the dashboard."""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path


from pipeline.settings import current as current_settings

log = logging.getLogger("maskwatch.store")

def utc_naive(t) -> datetime:
    """UNIX seconds, aware datetime, naive UTC datetime or None (now) -> naive UTC datetime."""
    if t is None:
        return datetime.now(timezone.utc).replace(tzinfo=None)
    if isinstance(t, (int, float)):
        return datetime.fromtimestamp(float(t), tz=timezone.utc).replace(tzinfo=None)
    if isinstance(t, datetime):
        return t.astimezone(timezone.utc).replace(tzinfo=None) if t.tzinfo else t
    raise TypeError(f"not a time: {t!r}")


def aware_utc(t: datetime) -> datetime:
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def iso_utc(t: datetime) -> str:
    return aware_utc(t).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
