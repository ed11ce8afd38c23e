"""The layering holds at run time too: the engine and the media code load without the UI stack or
the database (import-linter checks the static imports in CI; this checks what really loads)."""
from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pipeline.engine
import pipeline.media
from training.paths import ROOT

UI_STACK = ("streamlit", "plotly", "streamlit_webrtc", "sqlalchemy")


def _modules(package) -> list[str]:
    return [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]


def test_engine_and_media_import_without_ui_or_database():
    names = _modules(pipeline.engine) + _modules(pipeline.media)
    assert "pipeline.engine.mask_detector" in names and "pipeline.media.images" in names
    code = ("import importlib, json, sys\n"
            f"for n in {names!r}: importlib.import_module(n)\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {UI_STACK!r})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
