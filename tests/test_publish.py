"""training.publish against the local fake hub, then pipeline.engine.weights loading what was published.

The CLI and the loader run in fresh interpreters (huggingface_hub reads HF_* at import); the
refusals run in this process, since they must fail before any network call.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.hub_server import PYTHON, ROOT, HubServer, clean_env, flip_bytes, make_weights, run_steps  # noqa: E402

from training.publish import PublishError, main, publish  # noqa: E402

NET_FILES = sorted(f"{n}/{f}" for n in ("pnet", "rnet", "onet", "classifier",
                                        "camera/pnet", "camera/rnet", "camera/onet")
                   for f in ("config.json", "model.safetensors"))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    w = make_weights(tmp_path_factory.mktemp("pub") / "weights", seed=3)
    (w / "metrics.json").write_text(json.dumps({"val_accuracy": 0.5}) + "\n")
    (w / "classifier" / "history.json").write_text("[]\n")
    (w / "notes.pt").write_bytes(b"not for upload")                    # not JSON, not in the manifest
    return w


@pytest.fixture(scope="module")
def hub():
    with HubServer() as server:
        yield server


def test_publish_cli_then_load_from_hub(hub, weights, tmp_path):
    env = clean_env(HF_ENDPOINT=hub.url, HF_HOME=tmp_path / "hf_home")
    p = subprocess.run([PYTHON, "-m", "training.publish", "--repo", "mw/published", "--weights", str(weights)],
                       env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    sha = p.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{40}", sha), p.stdout
    assert f"MASKWATCH_HUB_REVISION={sha}" in p.stderr
    assert hub.repos["mw/published"].refs["main"] == sha

    remote = hub.files("mw/published", sha)
    expected = NET_FILES + ["README.md", "classifier/history.json", "manifest.json", "metrics.json"]
    assert sorted(k for k in remote if k != ".gitattributes") == sorted(expected)
    for rel in expected:
        if rel != "README.md":
            assert remote[rel] == (weights / rel).read_bytes(), rel
    card = remote["README.md"].decode()
    assert card.startswith("---\n") and "MASKWATCH_HUB_REPO=mw/published" in card
    manifest = json.loads((weights / "manifest.json").read_text())["files"]
    assert manifest["classifier/model.safetensors"]["sha256"] in card

    # load what was published, pinned to the printed sha
    hub.clear_log()
    env["MASKWATCH_WEIGHTS_DIR"] = str(weights)
    env["MASKWATCH_WEIGHTS_MANIFEST"] = str(weights / "manifest.json")   # the pin: these weights
    (r,) = run_steps([{"env": {"MASKWATCH_HUB_REPO": "mw/published", "MASKWATCH_HUB_REVISION": sha},
                       "forward": True}], env)
    assert r.kind == "hub" and r.error is None, r.raw
    assert Path(r.folder).name == sha and Path(r.folder).is_relative_to(tmp_path / "hf_home")
    # the default ("photo") detector weights and the classifier: the camera set is fetched when used
    assert sorted(p for _, _, p in hub.downloads()) == [f for f in NET_FILES if not f.startswith("camera/")]
    assert r.raw["shapes"]["classifier"] == [[2, 3]]


def test_publish_function_is_idempotent_and_sends_the_token(hub, weights, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # in case the runner sets it
    sha1 = publish(weights, "mw/direct", token="hf_local_test", endpoint=hub.url, log=lambda m: None)
    n_commits = len(hub.repos["mw/direct"].commits)
    sha2 = publish(weights, "mw/direct", token="hf_local_test", endpoint=hub.url, log=lambda m: None)
    assert sha1 == sha2 == hub.repos["mw/direct"].refs["main"]
    assert len(hub.repos["mw/direct"].commits) == n_commits, "an unchanged folder must not make a commit"
    posts = [r for r in hub.requests() if r.method == "POST" and (r.repo == "mw/direct" or "create" in r.path)]
    assert posts and all(r.authorization == "Bearer hf_local_test" for r in posts)


def test_publish_refuses_a_folder_that_does_not_match_its_manifest(hub, weights, tmp_path, capsys):
    bad = shutil.copytree(weights, tmp_path / "bad")
    flip_bytes(bad / "onet" / "model.safetensors")
    hub.clear_log()
    with pytest.raises(PublishError, match=r"refusing to publish .*onet/model\.safetensors .*fails its checksum"):
        publish(bad, "mw/never", endpoint=hub.url)
    assert main(["--repo", "mw/never", "--weights", str(bad), "--endpoint", hub.url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: refusing to publish"), err
    assert hub.requests() == [] and "mw/never" not in hub.repos


def test_publish_refuses_when_a_net_is_missing(hub, weights, tmp_path):
    from training.manifest import write_manifest

    partial = shutil.copytree(weights, tmp_path / "partial")
    shutil.rmtree(partial / "classifier")
    write_manifest(partial)                                          # consistent, but no classifier
    with pytest.raises(PublishError, match=r"lacks classifier/config\.json, classifier/model\.safetensors"):
        publish(partial, "mw/never", endpoint=hub.url)
    with pytest.raises(PublishError, match="manifest"):
        (partial / "manifest.json").unlink()
        publish(partial, "mw/never", endpoint=hub.url)
    assert "mw/never" not in hub.repos
