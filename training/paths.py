"""Where training reads data and writes weights (data: MASKWATCH_DATA, see pipeline.settings)."""
from __future__ import annotations

from pathlib import Path

from pipeline import settings

ROOT = settings.ROOT
DATA = settings.current().training_data
WEIGHTS = ROOT / "weights"


def repo_relative(path) -> str:
    """A folder as reports name it: relative to the repository when inside it, else its name;
    never one machine's absolute path."""
    p, root = Path(path).resolve(), ROOT.resolve()
    return str(p.relative_to(root)) if p.is_relative_to(root) else p.name
