"""Visitors never see server internals: Streamlit reads client.showErrorDetails = "none" from the
project's .streamlit/config.toml, an uncaught page exception reaches the browser as a generic
message only, and its full traceback is logged on the server (stderr).

Runs in a fresh interpreter in the project root, as `streamlit run` does: Streamlit reads
./.streamlit/config.toml from the working directory, once per process."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r'''
import json, sys
from streamlit import config
from streamlit.testing.v1 import AppTest
option = config.get_option("client.showErrorDetails")
at = AppTest.from_file(sys.argv[1], default_timeout=60).run()
shown = [{"message": e.message, "type": e.proto.type, "trace": list(e.stack_trace)} for e in at.exception]
print(json.dumps({"option": option, "shown": shown}))
'''

SCRIPT = '''
import streamlit as st
st.write("hello")
raise RuntimeError("secret-internal-detail /srv/app/pipeline/x.py")
'''


def test_error_details_hidden_from_visitors_and_logged(tmp_path):
    script = tmp_path / "boom.py"
    script.write_text(SCRIPT)
    p = subprocess.run([sys.executable, "-c", PROBE, str(script)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["option"] == "none"
    (shown,) = out["shown"]
    page = json.dumps(shown)
    assert "secret-internal-detail" not in page and "RuntimeError" not in page, shown
    assert shown["trace"] == [], shown
    # ... while the server's log has the whole story
    assert "secret-internal-detail" in p.stderr and "RuntimeError" in p.stderr, p.stderr[-2000:]
    assert "Uncaught app execution" in p.stderr and "boom.py" in p.stderr, p.stderr[-2000:]
