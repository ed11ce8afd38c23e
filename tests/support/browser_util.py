"""Helpers for the real-browser tests and tests/support/screenshots.py: a fake-webcam .y4m clip from a
real photo, a Streamlit server subprocess, and headless Debian Chromium through playwright."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np

from tests.support.data import ROOT  # noqa: E402
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required"]


def chromium_path() -> str | None:
    env = os.environ.get("MASKWATCH_CHROMIUM")
    for p in ([env] if env else []) + list(CHROMIUM_CANDIDATES):
        if p and Path(p).is_file() and os.access(p, os.X_OK):
            return p
    return shutil.which("chromium")


def write_y4m(path: Path, photo: Path, frames: int = 60, size=(640, 480), fps: int = 30) -> Path:
    """A fake-camera clip: the photo resized to `size`, panning a few pixels back and forth."""
    w, h = size
    img = cv2.imread(str(photo))
    if img is None:
        raise FileNotFoundError(photo)
    big = cv2.resize(img, (w + 16, h + 12), interpolation=cv2.INTER_AREA)
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for k in range(frames):
            dx = int(round(8 + 8 * np.sin(2 * np.pi * k / frames)))
            crop = np.ascontiguousarray(big[6:6 + h, dx:dx + w])
            fh.write(b"FRAME\n")
            fh.write(cv2.cvtColor(crop, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def needs_loopback_ice() -> bool:
    """True when aioice finds no host address (a network namespace with only `lo`): then ICE
    can only pair over 127.0.0.1, which aioice never offers by itself."""
    try:
        from aioice.ice import get_host_addresses
        return not get_host_addresses(use_ipv4=True, use_ipv6=False)
    except Exception:
        return False


# Runs streamlit with aioice offering 127.0.0.1 (tests only; see needs_loopback_ice).
_LOOPBACK_LAUNCHER = (
    "import sys, aioice.ice as ice; "
    "ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ['127.0.0.1']; "
    "from streamlit.web.cli import main; sys.argv = ['streamlit'] + sys.argv[1:]; main()")


class StreamlitServer:
    """`streamlit run app.py` on 127.0.0.1:<free port>, logs to a file, stopped on exit."""

    def __init__(self, log_dir: Path, env: dict | None = None, port: int | None = None,
                 loopback_ice: bool | None = None):
        if loopback_ice is None:
            forced = os.environ.get("MASKWATCH_TEST_LOOPBACK_ICE")
            loopback_ice = forced == "1" if forced in ("0", "1") else needs_loopback_ice()
        self.loopback_ice = loopback_ice
        self.port = port or free_port()
        self.log_path = Path(log_dir) / "streamlit.log"
        self.env = {**os.environ, "STREAMLIT_RUNNER_FAST_RERUNS": "false",
                    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", "MASKWATCH_ICE": "local",
                    "PYTHONUNBUFFERED": "1", "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
                    **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "StreamlitServer":
        self._log = open(self.log_path, "w")
        launcher = ["-c", _LOOPBACK_LAUNCHER] if self.loopback_ice else ["-m", "streamlit"]
        self.proc = subprocess.Popen(
            [sys.executable, *launcher, "run", "app.py", "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(self.port)],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        return self
            time.sleep(0.3)
        raise RuntimeError("streamlit did not answer /_stcore/health within 60 s")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()

    def log_tail(self, n: int = 3000) -> str:
        return self.log_path.read_text()[-n:] if self.log_path.exists() else ""


def read_frame_log(path: Path) -> list[dict]:
    if not Path(path).exists():
        return []
    out = []
    for line in Path(path).read_text().splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def fps_from_log(recs: list[dict], skip_s: float = 1.0) -> float:
    """Processed frames per second, ignoring the first `skip_s` seconds (warm-up)."""
    if len(recs) < 3:
        return 0.0
    t0 = recs[0]["t"] + skip_s
    rs = [r for r in recs if r["t"] >= t0] or recs
    dt = rs[-1]["t"] - rs[0]["t"]
    return (len(rs) - 1) / dt if dt > 0 else 0.0


def wait_first_run(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit's script run is done (no 'running' status widget)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.match(/Running/i)",
        timeout=timeout_ms)


WEBRTC_IFRAME = 'iframe[title="streamlit_webrtc.component.webrtc_streamer"]:visible'


def webrtc_frame(page):
    """The webcam component's frame. While the page reruns on a busy machine, Streamlit can hold
    a stale, zero-height copy of the component's iframe next to the live one (a bare "iframe"
    locator then matches two); take the visible one, the last if there are more."""
    return page.frame_locator(WEBRTC_IFRAME).last
