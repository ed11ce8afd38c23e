"""AppTest: app.py lists every page with a title and an icon (st.navigation), the landing page
first; switching to a page file still works."""
from __future__ import annotations

from tests.support.app_util import app_at, no_exception

TITLES = ["Home", "Photo", "Video", "Webcam", "Metrics", "Dashboard"]


def _navigation(at) -> list[dict]:
    """The pages this session registered, in sidebar order (what the sidebar navigation shows).
    AppTest keeps them after a run; it has no public accessor for the navigation menu."""
    return list(at._registered_pages.values())


def test_navigation_lists_page_titles_and_icons_not_app():
    at = app_at()
    at.run()
    no_exception(at)
    pages = _navigation(at)
    names = [p.get("page_name") for p in pages]
    assert names == TITLES, names                      # before: ['app', 'Photo', ...]
    assert "app" not in names
    assert all(p.get("icon") for p in pages), pages    # every entry has an icon
    urls = [p.get("url_pathname") for p in pages]
    assert urls == ["", "Photo", "Video", "Webcam", "Metrics", "Dashboard"]   # URLs unchanged
    # the default page is the landing content
    assert "MaskWatch finds every face" in at.markdown[0].value


def test_switch_page_reaches_a_page_by_its_file():
    at = app_at("4_Metrics.py")
    at.run()
    no_exception(at)
    assert at.title[0].value == "📊 Metrics"
    assert [p.get("page_name") for p in _navigation(at)] == TITLES
