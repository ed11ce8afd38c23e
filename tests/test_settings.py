"""pipeline.settings: every MASKWATCH_* variable is read there, with its default, and nowhere else."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline import settings
from pipeline.settings import Settings, SettingsError, current
from training.paths import ROOT


def test_defaults_with_nothing_set():
    s = current({})
    assert s == Settings()
    assert s.hub_repo is None and s.device == "auto" and s.db_url is None and s.weights_dir is None


def test_values_are_read_and_trimmed_and_empty_means_unset(tmp_path):
    s = current({"MASKWATCH_HUB_REPO": " org/name ", "MASKWATCH_HUB_REVISION": "a" * 40,
                 "MASKWATCH_HUB_TIMEOUT": "1.5", "MASKWATCH_DEVICE": "CPU", "MASKWATCH_DB_URL": "",
                 "MASKWATCH_DATA_DIR": str(tmp_path), "MASKWATCH_ICE": "HF", "MASKWATCH_TZ": "Europe/Paris"})
    assert (s.hub_repo, s.hub_revision, s.hub_timeout_s, s.device) == ("org/name", "a" * 40, 1.5, "cpu")
    assert s.db_url is None and s.data_dir == tmp_path and s.ice == "hf" and s.tz == "Europe/Paris"


@pytest.mark.parametrize("env, name", [({"MASKWATCH_HUB_TIMEOUT": "soon"}, "MASKWATCH_HUB_TIMEOUT"),
                                       ({"MASKWATCH_HUB_TIMEOUT": "-1"}, "MASKWATCH_HUB_TIMEOUT"),
                                       ({"MASKWATCH_DEVICE": "tpu"}, "MASKWATCH_DEVICE")])
def test_unusable_values_name_the_variable(env, name):
    with pytest.raises(SettingsError, match=name):
        current(env)


def test_no_other_module_reads_a_maskwatch_variable():
    """One settings module: code elsewhere never looks a MASKWATCH_* variable up itself."""
    reader = re.compile(r"""(environ(\.get)?\s*[\[(]|getenv\s*\()\s*["']MASKWATCH_""")
    own = Path(settings.__file__).resolve()
    offenders = []
    for folder in ("pipeline", "pages", "training", "benchmarks"):
        for f in (ROOT / folder).rglob("*.py"):
            if f.resolve() != own and reader.search(f.read_text()):
                offenders.append(str(f.relative_to(ROOT)))
    if reader.search((ROOT / "app.py").read_text()):
        offenders.append("app.py")
    assert offenders == []
