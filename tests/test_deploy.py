"""The repository's README.md is the Space's README: its front matter, read with
huggingface_hub's own parser, makes a Docker Space on the port the Dockerfile serves."""
from __future__ import annotations

import re
from pathlib import Path

from huggingface_hub import SpaceCard

ROOT = Path(__file__).resolve().parents[1]


def _dockerfile_ports() -> tuple[set[int], set[int]]:
    """(EXPOSEd ports, --server.port values in the CMD) of the Dockerfile."""
    text = (ROOT / "Dockerfile").read_text()
    exposed = {int(p) for line in re.findall(r"^EXPOSE\s+(.+)$", text, re.M) for p in line.split()}
    cmd = re.search(r"^CMD\s+(\[.*\])\s*$", text, re.M)
    assert cmd, "no exec-form CMD in the Dockerfile"
    served = {int(p) for p in re.findall(r'"--server\.port",\s*"(\d+)"', cmd.group(1))}
    return exposed, served


def test_readme_front_matter_is_a_docker_space_on_the_dockerfile_port():
    readme = ROOT / "README.md"
    assert readme.read_text(encoding="utf-8").startswith("---\n")   # HF reads only a leading block
    card = SpaceCard.load(readme)
    meta = card.data.to_dict()
    assert meta["sdk"] == "docker"
    exposed, served = _dockerfile_ports()
    assert exposed == served == {meta["app_port"]}, (meta.get("app_port"), exposed, served)
    assert meta["title"] == "MaskWatch" and meta.get("emoji")
    assert 0 < len(meta.get("short_description", "")) <= 60           # the Hub's limit
    assert card.text.lstrip().startswith("# MaskWatch")               # the README itself follows


def test_deploy_guide_has_no_second_copy_of_the_front_matter():
    guide = (ROOT / "docs" / "DEPLOY.md").read_text(encoding="utf-8")
    assert not re.search(r"^(sdk|app_port):", guide, re.M)            # no YAML copy to drift
    assert "README.md" in guide
