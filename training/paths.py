"""Where training reads data and writes weights (data: MASKWATCH_DATA, see pipeline.settings)."""
from __future__ import annotations

from pipeline import settings

ROOT = settings.ROOT
DATA = settings.current().training_data
WEIGHTS = ROOT / "weights"
