"""Screenshot every page in headless Debian Chromium (not a test; run by hand or in CI):

    python -m tests.support.screenshots [--out artifacts/screens]

Starts `streamlit run app.py` on a free port, then: Home (the landing page); Photo with the
bundled collage sample; Video after processing the bundled sample clip; Webcam with the fake
camera (a real group photo) running; Metrics; Dashboard on a fresh store, then with the demo
data. Prints one line per page.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path


from tests.support.data import DATA, ROOT
from tests.support.browser_util import (CHROMIUM_ARGS, StreamlitServer, chromium_path,  # noqa: E402
                          read_frame_log, wait_first_run, webrtc_frame, write_y4m)


def settle(page, seconds: float = 1.0) -> None:
    wait_first_run(page, 180_000)
    page.wait_for_timeout(int(seconds * 1000))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "screens")
    a = ap.parse_args(argv)
    chromium = chromium_path()
    if not chromium:
        print("chromium not found (apt-get install chromium)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    a.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="maskwatch_shots_"))
    clip = write_y4m(tmp / "camera.y4m", DATA / "scenes" / "dlib_faces" / "2008_002506.jpg")
    frame_log = tmp / "frames.jsonl"
    with StreamlitServer(tmp, env={"MASKWATCH_FRAME_LOG": str(frame_log)}) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                     args=CHROMIUM_ARGS + [f"--use-file-for-fake-video-capture={clip}"])
        page = browser.new_page(viewport={"width": 1400, "height": 1500})

        def shot(name: str) -> None:
            path = a.out / f"{name}.png"
            page.screenshot(path=str(path), full_page=True)
            print(f"{name}: {path}")

        page.goto(server.url + "/", timeout=120_000)
        page.get_by_text("In the sample").wait_for(timeout=180_000)
        settle(page)
        shot("1_landing")

        page.goto(server.url + "/Photo")
        settle(page)
        page.get_by_text("Sample", exact=True).click()
        page.get_by_text("Faces", exact=True).wait_for(timeout=120_000)
        page.locator("[data-testid='stDataFrame']").wait_for(timeout=60_000)
        settle(page)
        shot("2_photo")

        page.goto(server.url + "/Video")
        settle(page)
        page.get_by_text("Sample clip", exact=True).click()
        page.get_by_role("button", name="Process video").click()
        page.get_by_text("most faces at once").wait_for(timeout=300_000)
        settle(page, 2)
        shot("3_video")

        page.goto(server.url + "/Webcam")
        settle(page)
        start = webrtc_frame(page).get_by_role("button", name=re.compile("^start$", re.I))
        start.click()
        t_click, restarted = time.time(), False
        deadline = time.time() + 90
        while time.time() < deadline and len(read_frame_log(frame_log)) < 40:
            if not restarted and not read_frame_log(frame_log) and time.time() - t_click > 25:
                restarted = True       # the upstream connection-reset flake: STOP, START again
                stop = webrtc_frame(page).get_by_role("button", name=re.compile("^stop$", re.I))
                if stop.count():
                    stop.click()
                    page.wait_for_timeout(1500)
                start.click()
            page.wait_for_timeout(500)
        page.wait_for_timeout(3000)
        shot("4_webcam")

        page.goto(server.url + "/Metrics")
        page.get_by_text("Data sets", exact=True).wait_for(timeout=120_000)
        settle(page, 2)
        shot("5_metrics")

        page.goto(server.url + "/Dashboard")           # a fresh store: empty, then the demo
        page.get_by_role("button", name="Load demo data").wait_for(timeout=120_000)
        settle(page)
        shot("6_dashboard_empty")
        page.get_by_role("button", name="Load demo data").click()
        page.get_by_role("button", name="Back to the real data").wait_for(timeout=120_000)
        settle(page, 2)
        shot("7_dashboard_demo")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
