"""AppTest: the Dashboard page on a seeded store; the charts match the stored events."""
from __future__ import annotations


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


def test_unreachable_database_is_an_error_not_a_crash(monkeypatch):
    monkeypatch.setenv("MASKWATCH_DB_URL", "postgresql://mw:secret@127.0.0.1:1/maskwatch")
    dashboard.reset_stores()
    at = page()
    assert at.error and "Cannot reach the database" in at.error[0].value
    assert "secret" not in at.error[0].value
    dashboard.reset_stores()


def test_demo_button_fills_the_dashboard_and_charts_match_the_events(db_url):
    at = page()
    at.button(key="dash_demo").click().run()
    no_exception(at)
    assert any("demo people" in s.value for s in at.success)
    store = open_store(db_url)
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
    store.close()


def test_source_filter_and_hourly_flow(db_url):
    at = page()
    at.button(key="dash_demo").click().run()
    at.multiselect(key="dash_sources").set_value(["demo-lobby"]).run()
    at.radio(key="dash_bucket").set_value("hour").run()
    no_exception(at)
    store = open_store(db_url)
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
    store.close()


def test_real_events_show_next_to_the_demo(db_url):
    store = open_store(db_url)
    import time
    now = time.time()
    store.add_events([PersonEvent(now - 600 + k, now - 598 + k, "incorrect", 0.8, 12, "front-door")
                      for k in range(7)])
    store.close()
    at = page()
    assert at.multiselect(key="dash_sources").options == ["front-door"]
    assert metrics(at)["incorrect"] == "7"
    at.button(key="dash_demo").click().run()
    assert set(at.multiselect(key="dash_sources").options) == {"front-door", *DEMO_SOURCES}
