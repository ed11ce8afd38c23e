"""Where training reads data and writes weights. Override with MASKWATCH_DATA."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MASKWATCH_DATA", ROOT.parent / "shared" / "data"))
WEIGHTS = ROOT / "weights"
