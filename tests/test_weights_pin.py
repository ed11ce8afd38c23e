"""The checksum pin and config.json checks of pipeline.engine.weights, in this process (no hub involved:
MASKWATCH_HUB_REPO unset). The hub side is in test_hub.py."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.engine import weights as hub
from pipeline.engine.weights import LOCAL_WEIGHTS, HubSettings, WeightsError, load_net, load_nets, resolve_weights
from tests.support.hub_server import make_weights


@pytest.fixture
def env(monkeypatch):
    for k in ("MASKWATCH_HUB_REPO", "MASKWATCH_WEIGHTS_DIR", "MASKWATCH_WEIGHTS_MANIFEST"):
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    """Another complete, self-consistent weights set (its own manifest.json inside)."""
    return make_weights(tmp_path_factory.mktemp("other") / "w", seed=5)


def test_override_folder_with_its_own_manifest_is_refused(env, other):
    env.setenv("MASKWATCH_WEIGHTS_DIR", str(other))
    with pytest.raises(WeightsError, match=r"Local: classifier/config\.json from .* fails its checksum .*; refused"):
        resolve_weights()


def test_override_folder_with_the_committed_files_loads_without_a_manifest(env, tmp_path):
    copy = tmp_path / "copy"
    for rel in hub.required_files():
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(LOCAL_WEIGHTS / rel, copy / rel)
    env.setenv("MASKWATCH_WEIGHTS_DIR", str(copy))
    assert not (copy / "manifest.json").exists()
    source = resolve_weights()
    assert source.kind == "local" and source.folder == copy


def test_an_explicit_manifest_pins_other_weights(env, other, tmp_path):
    pin = tmp_path / "pin.json"
    shutil.copy(other / "manifest.json", pin)
    env.setenv("MASKWATCH_WEIGHTS_DIR", str(other))
    env.setenv("MASKWATCH_WEIGHTS_MANIFEST", str(pin))
    assert HubSettings.from_env().manifest == pin
    nets, source = load_nets()
    assert source.folder == other and nets["classifier"].config.channels == (4, 8)


def _with_classifier_config(src: Path, dest: Path, **changes) -> Path:
    shutil.copytree(src / "classifier", dest / "classifier")
    doc = json.loads((src / "classifier" / "config.json").read_text())
    doc["config"].update(changes)
    (dest / "classifier" / "config.json").write_text(json.dumps(doc))   # NaN is written as NaN
    return dest


@pytest.mark.parametrize("changes,needle", [
    ({"margin": float("nan")}, "margin = NaN must be a finite number from 0.0 to 1.0"),
    ({"margin": -0.5}, "margin = -0.5"),
    ({"crop_size": 4096}, "crop_size = 4096 must be a whole number from 16 to 256"),
    ({"crop_size": 64.5}, "crop_size = 64.5"),
    ({"channels": [24, 3e8, 96, 128]}, "channels[1] = 300000000.0 must be a whole number from 1 to 512"),
    ({"channels": [24, 300_000_000, 96, 128]}, "channels[1] = 300000000 must be a whole number"),
    ({"channels": []}, "channels must be a list of 1 to 8 counts"),
    ({"channels": [8] * 5, "crop_size": 16}, "too small for 5 conv blocks"),
    ({"hidden": True}, "hidden = true"),
    ({"num_classes": 4}, "num_classes = 4 must be a whole number from 3 to 3"),
])
def test_classifier_config_values_are_checked_before_the_net_is_built(tmp_path, changes, needle):
    folder = _with_classifier_config(LOCAL_WEIGHTS, tmp_path, **changes)
    with pytest.raises(WeightsError, match="refused") as e:
        load_net("classifier", folder)
    assert needle in str(e.value) and "classifier/config.json" in str(e.value), str(e.value)


def test_detector_config_must_name_its_own_architecture(tmp_path):
    shutil.copytree(LOCAL_WEIGHTS / "rnet", tmp_path / "rnet")
    (tmp_path / "rnet" / "config.json").write_text(json.dumps({"architecture": "ONet", "config": {}}))
    with pytest.raises(WeightsError, match='architecture "ONet" is not RNet'):
        load_net("rnet", tmp_path)
    (tmp_path / "rnet" / "config.json").write_text("[1, 2]")
    with pytest.raises(WeightsError, match="expected an object with architecture, config"):
        load_net("rnet", tmp_path)
    (tmp_path / "rnet" / "config.json").write_text(json.dumps({"architecture": "RNet", "config": {"width": 3}}))
    with pytest.raises(WeightsError, match="RNet takes no config"):
        load_net("rnet", tmp_path)
    (tmp_path / "rnet" / "config.json").write_text(json.dumps({"architecture": "RNet", "config": {}, "code": "x"}))
    with pytest.raises(WeightsError, match='unknown key "code"'):
        load_net("rnet", tmp_path)


def test_committed_configs_pass():
    assert load_net("classifier", LOCAL_WEIGHTS).config == hub.classifier_config(
        json.loads((LOCAL_WEIGHTS / "classifier" / "config.json").read_text())["config"])


def test_every_net_saves_and_loads_back_through_one_pair(tmp_path):
    """save_net writes the one config.json shape for all four nets; load_net reads it back."""
    import torch
    for name in ("pnet", "rnet", "onet", "classifier"):
        net = load_net(name, LOCAL_WEIGHTS)
        folder = hub.save_net(net, tmp_path / name, source="a copy for the test", training={"seed": 1})
        doc = json.loads((folder / "config.json").read_text())
        assert list(doc) == ["architecture", "config", "source", "training"], doc
        again = load_net(name, tmp_path)
        for (k, a), (k2, b) in zip(net.state_dict().items(), again.state_dict().items()):
            assert k == k2 and torch.equal(a, b), k
    committed = {n: json.loads((LOCAL_WEIGHTS / n / "config.json").read_text()) for n in ("pnet", "rnet", "onet", "classifier")}
    assert all(set(d) <= set(hub.CONFIG_FIELDS) and "config" in d for d in committed.values()), committed


def test_load_net_checks_the_bytes_it_parses(tmp_path):
    """A file swapped after resolve_weights checked the folder is refused at load time."""
    manifest = hub.load_manifest()
    for rel in ("classifier/config.json", "classifier/model.safetensors"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(LOCAL_WEIGHTS / rel, tmp_path / rel)
    assert load_net("classifier", tmp_path, manifest).config.channels == (24, 48, 96, 128)
    other = make_weights(tmp_path / "other", seed=6)
    shutil.copy(other / "classifier" / "model.safetensors", tmp_path / "classifier" / "model.safetensors")
    with pytest.raises(WeightsError, match=r"classifier/model\.safetensors from .* fails its checksum"):
        load_net("classifier", tmp_path, manifest)


def test_weights_that_do_not_fit_their_config_give_a_weights_error(tmp_path):
    folder = _with_classifier_config(LOCAL_WEIGHTS, tmp_path, hidden=32)
    with pytest.raises(WeightsError, match="does not fit its config.json"):
        load_net("classifier", folder)
