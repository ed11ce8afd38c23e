"""AppTest: the Dashboard page on a seeded store; the charts match the stored events."""
from __future__ import annotations

import logging
import os
import time

import pytest

from tests.support.app_util import app_at, metrics, no_exception, plotly_specs
from pipeline.ui import dashboard
from pipeline.store import DEMO_SOURCES, day_range, local_tz, open_store
from pipeline.records import PersonEvent


@pytest.fixture
def db_url(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'dash.db'}"
    monkeypatch.setenv("MASKWATCH_DB_URL", url)
    dashboard.reset_stores()
    yield url
    dashboard.reset_stores()


def page():
    at = app_at("5_Dashboard.py", timeout=120)
    at.run()
    no_exception(at)
    return at


def figures(at) -> dict[str, dict]:
    out = {}
    for spec in plotly_specs(at):
        title = spec["layout"].get("title", {})
        out[title.get("text") if isinstance(title, dict) else title] = spec
    return out


def test_empty_store_says_so(db_url):
    at = page()
    assert not at.error
    assert any("No people logged yet" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def demo_store():
    store = dashboard.get_demo_store()
    assert store.demo
    return store


def test_fresh_clone_with_no_setting_uses_the_embedded_default(tmp_path, monkeypatch):
    """No MASKWATCH_* variable, an empty working folder: the default SQLite file is created in
    ./data and the page works (it said 'the folder .../data does not exist')."""
    for k in list(os.environ):
        if k.startswith("MASKWATCH_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    dashboard.reset_stores()
    try:
        ctx = dashboard.open_dashboard()
        assert ctx.error is None and ctx.empty
        assert (tmp_path / "data" / "maskwatch.db").is_file()
        at = page()
        assert not at.error
        assert any("No people logged yet" in i.value for i in at.info)
    finally:
        dashboard.reset_stores()


@pytest.mark.parametrize("url, secrets", [
    ("postgresql://mw:secret@127.0.0.1:1/maskwatch", ["secret"]),
    ("postgresql://mw:pw1@127.0.0.1:1/maskwatch?password=qs-secret&sslpassword=ssl-secret",
     ["qs-secret", "ssl-secret", "pw1"]),
    ("postgresql://a:x@[::1:1/db", []),                      # malformed: no traceback either
])
def test_unavailable_database_is_a_plain_message_details_in_the_log(monkeypatch, caplog, url, secrets):
    """Visitors read that the database is unavailable, not its user, host or port, and never
    a password; the reason goes to the server log, passwords hidden."""
    monkeypatch.setenv("MASKWATCH_DB_URL", url)
    dashboard.reset_stores()
    with caplog.at_level(logging.WARNING, logger="maskwatch.dashboard"):
        at = page()
    shown = " ".join(e.value for e in at.error)
    assert shown == dashboard.UNAVAILABLE
    for word in ["mw", "127.0.0.1", ":1", "5432", "::1", *secrets]:
        assert word not in shown
    logged = caplog.text
    assert "maskwatch.dashboard" in logged or "dashboard:" in logged
    assert ("Cannot reach the database" in logged) or ("not valid" in logged)
    for secret in secrets:
        assert secret not in logged
    at.button(key="dash_demo").click().run()        # the demo still works without a database
    no_exception(at)
    assert not at.error and at.get("plotly_chart")
    dashboard.reset_stores()


def test_demo_button_fills_the_dashboard_and_charts_match_the_events(db_url):
    at = page()
    at.button(key="dash_demo").click().run()
    no_exception(at)
    assert any("Demo data" in w.value for w in at.warning)        # says so, clearly
    store = demo_store()
    first, last = at.date_input(key="dash_dates").value
    start, end = day_range(first, last, local_tz())
    events = store.events(start, end)
    assert len(events) > 3000
    want = {c: sum(e.label == c for e in events) for c in ("mask", "no_mask", "incorrect")}

    figs = figures(at)
    flow = figs["People per day"]
    per_class = {t["meta"]: t["y"] for t in flow["data"]}
    assert {c: sum(v) for c, v in per_class.items()} == want          # per-day sums = events
    assert len(flow["data"][0]["x"]) == (last - first).days + 1
    donut = figs["Proportions"]["data"][0]
    assert dict(zip(donut["meta"], donut["values"])) == want
    m = metrics(at)
    assert m["people"] == f"{len(events):,}" and m["no mask"] == f"{want['no_mask']:,}"
    assert m["masked correctly"] == f"{want['mask'] / len(events):.0%}"
    share = figs["Share masked correctly"]["data"][0]["y"]
    assert all(y is None or 0 <= y <= 100 for y in share)

    table = at.dataframe[0].value
    assert len(table) == dashboard.RECENT_ROWS
    assert table.iloc[0]["first seen"] >= table.iloc[-1]["first seen"]   # newest first
    assert set(table.columns) == {"first seen", "seconds in view", "label", "confidence", "source", "frames"}
    csv_button = at.get("download_button")
    assert csv_button
    assert open_store(db_url).events() == []                      # the real one is untouched


def test_source_filter_and_hourly_flow(db_url):
    at = page()
    at.button(key="dash_demo").click().run()
    at.multiselect(key="dash_sources").set_value(["demo-lobby"]).run()
    at.radio(key="dash_bucket").set_value("hour").run()
    no_exception(at)
    store = demo_store()
    first, last = at.date_input(key="dash_dates").value
    start, end = day_range(first, last, local_tz())
    events = store.events(start, end, sources=["demo-lobby"])
    flow = figures(at)["People per hour"]
    assert len(flow["data"][0]["x"]) == 24 * ((last - first).days + 1)
    per_class = {t["meta"]: sum(t["y"]) for t in flow["data"]}
    assert per_class == {c: sum(e.label == c for e in events) for c in ("mask", "no_mask", "incorrect")}
    assert set(at.dataframe[0].value["source"]) == {"demo-lobby"}
    # a narrower date range
    at.date_input(key="dash_dates").set_value((last, last)).run()
    no_exception(at)
    s, e = day_range(last, last, local_tz())
    flow = figures(at)["People per hour"]
    assert sum(sum(t["y"]) for t in flow["data"]) == len(store.events(s, e, sources=["demo-lobby"]))


def test_demo_never_touches_the_real_database(db_url):
    """A real camera named demo-entrance keeps its rows; the configured database gets no demo
    row; the page says when it shows demo data and goes back to the real data."""
    store = open_store(db_url)
    now = time.time()
    store.add_events([PersonEvent(now - 600 + k, now - 598 + k, "incorrect", 0.8, 12, "front-door")
                      for k in range(7)])
    store.add_events([PersonEvent(now - 300, now - 290, "mask", 0.9, 30, "demo-entrance")])
    before = [(e.id, e.source, e.label) for e in store.events()]
    at = page()
    assert at.multiselect(key="dash_sources").options == ["demo-entrance", "front-door"]
    assert metrics(at)["people"] == "8" and not at.warning
    at.button(key="dash_demo").click().run()
    no_exception(at)
    assert any("Demo data" in w.value for w in at.warning)
    assert set(at.multiselect(key="dash_sources").options) == set(DEMO_SOURCES)
    assert int(metrics(at)["people"].replace(",", "")) > 3000
    assert [(e.id, e.source, e.label) for e in store.events()] == before   # nothing written or deleted
    at.button(key="dash_real").click().run()                 # back to the real data
    no_exception(at)
    assert not at.warning and metrics(at)["people"] == "8"
    assert at.multiselect(key="dash_sources").options == ["demo-entrance", "front-door"]
    store.close()


def test_the_csv_is_built_only_when_the_download_asks_for_it(db_url, monkeypatch):
    """A year of many cameras is millions of rows: building the view must not export them."""
    from pipeline.store import EventStore
    now = time.time()
    open_store(db_url).add_events([PersonEvent(now - 600 + k, now - 598 + k, "mask", 0.9, 12, "front-door")
                                   for k in range(3)])
    calls = []
    real = EventStore.export_csv
    monkeypatch.setattr(EventStore, "export_csv", lambda self, *a, **kw: calls.append(a) or real(self, *a, **kw))
    ctx = dashboard.open_dashboard(db_url)
    view = dashboard.build_view(ctx, None, None)
    assert calls == [] and view.people == 3
    text = view.csv()
    assert len(calls) == 1 and text.splitlines()[0].startswith("id,first_seen_utc") and len(text.splitlines()) == 4
