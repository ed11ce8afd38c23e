"""Every MASKWATCH_* environment setting, read here and nowhere else, into one frozen record.

`current()` reads the environment when it is called (not at import), so a test or a process
that sets a variable before using the engine or the store sees it. Every field names its
variable and its default; an empty variable counts as unset. A value that cannot be read (a
timeout that is not a number, an unknown device) is a SettingsError that names the variable.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The checkout: app.py, weights/, pipeline/."""
SAMPLES_DIR = ROOT / "pipeline" / "samples"
"""The bundled sample photos and clip (sources and licences in SOURCES.md there)."""
DEVICES = ("auto", "cpu", "cuda")


class SettingsError(ValueError):
    """A MASKWATCH_* variable holds a value that cannot be used. str(err) names it."""


@dataclass(frozen=True)
class Settings:
    """hub_repo: MASKWATCH_HUB_REPO, a Hugging Face model repo (OWNER/NAME); None: local weights.
    hub_revision: MASKWATCH_HUB_REVISION, the commit to pin (a 40-hex sha; a branch works, unpinned).
    hub_timeout_s: MASKWATCH_HUB_TIMEOUT, seconds for the hub reachability probe (default 3).
    weights_dir: MASKWATCH_WEIGHTS_DIR, a weights folder instead of the committed weights/ (it
        supplies files only: they must still match the pinned manifest).
    weights_manifest: MASKWATCH_WEIGHTS_MANIFEST, the sha256 manifest that pins every weight file;
        None: the committed weights/manifest.json.
    device: MASKWATCH_DEVICE, auto | cpu | cuda (default auto: the GPU when there is one).
    db_url: MASKWATCH_DB_URL, any SQLAlchemy URL for the people store; None: SQLite in data_dir.
    data_dir: MASKWATCH_DATA_DIR, the folder of the default SQLite file; None: ./data.
    tz: MASKWATCH_TZ, the dashboard's IANA time zone; None: the machine's.
    ice: MASKWATCH_ICE, the webcam's ICE servers (local | hf | twilio | auto); None: local, or
        auto on a Hugging Face Space.
    alert_lang: MASKWATCH_ALERT_LANG, the language of the webcam's spoken alert (en, fr, de, es;
        a tag such as fr-CA works); None: English.
    frame_log: MASKWATCH_FRAME_LOG, a file the webcam callback appends a JSON line to per frame
        (tests and benchmarks).
    training_data: MASKWATCH_DATA, the training and test data (default ../shared/data).
    cache_dir: MASKWATCH_CACHE, downloads for benchmarks (default ~/.cache/maskwatch).
    """

    hub_repo: str | None = None
    hub_revision: str = "main"
    hub_timeout_s: float = 3.0
    weights_dir: Path | None = None
    weights_manifest: Path | None = None
    device: str = "auto"
    db_url: str | None = None
    data_dir: Path | None = None
    tz: str | None = None
    ice: str | None = None
    alert_lang: str | None = None
    frame_log: Path | None = None
    training_data: Path = ROOT.parent / "shared" / "data"
    cache_dir: Path = Path.home() / ".cache" / "maskwatch"


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    return value or None


def _path(env: Mapping[str, str], name: str) -> Path | None:
    value = _text(env, name)
    return Path(value).expanduser() if value else None


def current(env: Mapping[str, str] | None = None) -> Settings:
    """The settings now in the environment (os.environ unless env is given)."""
    env = os.environ if env is None else env
    default = Settings()
    timeout = _text(env, "MASKWATCH_HUB_TIMEOUT")
    try:
        timeout_s = float(timeout) if timeout else default.hub_timeout_s
    except ValueError:
        raise SettingsError(f"MASKWATCH_HUB_TIMEOUT={timeout!r} is not a number of seconds") from None
    if not (0 < timeout_s < 600):
        raise SettingsError(f"MASKWATCH_HUB_TIMEOUT={timeout!r}: expected more than 0 and less than 600 seconds")
    device = (_text(env, "MASKWATCH_DEVICE") or default.device).lower()
    if device not in DEVICES:
        raise SettingsError(f"MASKWATCH_DEVICE={device!r}: expected one of {', '.join(DEVICES)}")
    return Settings(
        hub_repo=_text(env, "MASKWATCH_HUB_REPO"),
        hub_revision=_text(env, "MASKWATCH_HUB_REVISION") or default.hub_revision,
        hub_timeout_s=timeout_s,
        weights_dir=_path(env, "MASKWATCH_WEIGHTS_DIR"),
        weights_manifest=_path(env, "MASKWATCH_WEIGHTS_MANIFEST"),
        device=device,
        db_url=_text(env, "MASKWATCH_DB_URL"),
        data_dir=_path(env, "MASKWATCH_DATA_DIR"),
        tz=_text(env, "MASKWATCH_TZ"),
        ice=(_text(env, "MASKWATCH_ICE") or "").lower() or None,
        alert_lang=_text(env, "MASKWATCH_ALERT_LANG"),
        frame_log=_path(env, "MASKWATCH_FRAME_LOG"),
        training_data=_path(env, "MASKWATCH_DATA") or default.training_data,
        cache_dir=_path(env, "MASKWATCH_CACHE") or default.cache_dir,
    )
