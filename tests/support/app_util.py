"""AppTest helpers for the page tests."""
from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from training.paths import ROOT  # noqa: E402
APP = ROOT / "app.py"


def app_at(page: str | None = None, timeout: float = 180) -> AppTest:
    """An AppTest of app.py (st.navigation over pipeline.ui.session.PAGES), switched to pages/<page>
    when given (not yet run). Before the first run AppTest finds the page by its URL path, the
    file name without its number, which is the path st.navigation gives it too."""
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    if page:
        at.switch_page(f"pages/{page}")
    return at


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def plotly_specs(at) -> list[dict]:
    """The figures of every st.plotly_chart on the page, as dicts."""
    return [json.loads(e.proto.spec) for e in at.get("plotly_chart")]


def upload(at, name: str, data: bytes, mime: str, index: int = 0):
    at.file_uploader[index].set_value((name, data, mime))
    return at


def no_exception(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
