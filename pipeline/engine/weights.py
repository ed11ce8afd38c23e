"""The only place that saves and loads weights: save_net() writes a net's folder, load_net()
reads it back.

Each net is a folder of two files: model.safetensors and config.json, one shape for all four
nets: {"architecture": the module class, "config": its constructor settings ({} for the MTCNN
nets, ClassifierConfig's fields for the classifier), "source": where the weights come from,
"training": how they were made (optional)}.

Sources, in order:
1. A Hugging Face model repo, when MASKWATCH_HUB_REPO is set, at the revision pinned by
   MASKWATCH_HUB_REVISION (a 40-hex commit is best; a branch name works but is not pinned).
   A copy already in the local HF cache is used first (so it works offline); otherwise the
   files are downloaded through huggingface_hub, after a quick reachability probe of the
   endpoint so that an unreachable hub costs seconds, not ~23 s of client retries.
2. The committed weights/ folder (or MASKWATCH_WEIGHTS_DIR, a folder holding the same files).

Two sets of detector weights (config.DETECTOR_WEIGHTS), one classifier: "photo" (pnet/, rnet/,
onet/), the default, and "camera" (camera/pnet/, camera/rnet/, camera/onet/).

The pin: every file, from either source, must match the sha256 in ONE manifest, the committed
weights/manifest.json, or the file named by MASKWATCH_WEIGHTS_MANIFEST (an explicit choice, for
weights other than the committed ones). It is never taken from MASKWATCH_WEIGHTS_DIR or from the
hub: a folder or a hub repo cannot vouch for itself. A mismatch is refused. Only config.json and
model.safetensors are read (no pickle). Every config.json value is checked against sane ranges
before a net is built (WeightsError otherwise); each net is loaded with strict=True and put in
eval mode.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save_file

from pipeline.settings import current as current_settings
from pipeline.engine.config import DEFAULT_DETECTOR, DETECTOR_WEIGHTS, ClassifierConfig
from pipeline.engine.nets import NETS, MaskClassifier
from pipeline.records import CLASSES

log = logging.getLogger("maskwatch.hub")

LOCAL_WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
MANIFEST_NAME = "manifest.json"
NET_FILES = ("config.json", "model.safetensors")
DEFAULT_ENDPOINT = "https://huggingface.co"


class WeightsError(RuntimeError):
    """No usable weights. str(err) says what was tried and why each source failed."""


@dataclass(frozen=True)
class HubSettings:
    """Where to look for weights. Read from the environment by from_env()."""

    repo: str | None = None
    revision: str = "main"
    local_dir: Path = LOCAL_WEIGHTS
    probe_timeout: float = 3.0
    manifest: Path = LOCAL_WEIGHTS / MANIFEST_NAME
    """The pin for both sources; never derived from local_dir."""

    @classmethod
    def from_env(cls) -> "HubSettings":
        s = current_settings()
        return cls(repo=s.hub_repo, revision=s.hub_revision, local_dir=s.weights_dir or LOCAL_WEIGHTS,
                   probe_timeout=s.hub_timeout_s, manifest=s.weights_manifest or LOCAL_WEIGHTS / MANIFEST_NAME)


@dataclass(frozen=True)
class WeightsSource:
    """Where the loaded weights came from, for the UI and logs."""

    kind: str                  # "hub" or "local"
    folder: Path
    repo: str | None = None
    revision: str | None = None
    note: str = ""

    def describe(self) -> str:
        if self.kind == "hub":
            return f"hub {self.repo} @ {self.revision}"
        return f"local {self.folder}" + (f" ({self.note})" if self.note else "")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_manifest(path: Path | None = None) -> dict[str, str]:
    """The committed manifest -> {relative file path: sha256}."""
    path = path or LOCAL_WEIGHTS / MANIFEST_NAME
    try:
        data = json.loads(Path(path).read_text())
        return {k: v["sha256"] for k, v in data["files"].items()}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise WeightsError(f"weights manifest {path} is missing or unreadable ({e})") from None


DETECTOR_NETS = ("pnet", "rnet", "onet")


def net_prefix(name: str, detector: str = DEFAULT_DETECTOR) -> str:
    """The folder prefix of net `name` in detector weight set `detector` ("" or "camera/");
    the classifier is one for both. ValueError for an unknown set."""
    if detector not in DETECTOR_WEIGHTS:
        raise ValueError(f"unknown detector weights {detector!r} ({', '.join(DETECTOR_WEIGHTS)})")
    return DETECTOR_WEIGHTS[detector] if name in DETECTOR_NETS else ""


def required_files(nets=tuple(NETS), detector: str = DEFAULT_DETECTOR) -> list[str]:
    return [f"{net_prefix(n, detector)}{n}/{f}" for n in nets for f in NET_FILES]


def release_files(nets=tuple(NETS)) -> list[str]:
    """Every file of `nets` that a release holds: each net of every detector weight set."""
    return sorted({rel for d in DETECTOR_WEIGHTS for rel in required_files(nets, d)})


def verify_folder(folder: Path, manifest: dict[str, str], files: list[str]) -> None:
    """Raise WeightsError unless every file exists in folder with the manifest's sha256."""
    for rel in files:
        if rel not in manifest:
            raise WeightsError(f"{rel} is not in the weights manifest")
        f = Path(folder) / rel
        if not f.is_file():
            raise WeightsError(f"{rel} is missing from {folder}")
        digest = sha256_file(f)
        if digest != manifest[rel]:
            raise WeightsError(f"{rel} from {folder} fails its checksum "
                               f"(sha256 {digest[:12]}…, expected {manifest[rel][:12]}…); refused")


def _endpoint() -> str:
    from huggingface_hub import constants
    return getattr(constants, "ENDPOINT", None) or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT


def _probe(endpoint: str, timeout: float) -> None:
    """Fail fast (OSError) when the hub's host does not accept a TCP connection."""
    u = urlparse(endpoint)
    port = u.port or (443 if u.scheme == "https" else 80)
    with socket.create_connection((u.hostname, port), timeout=timeout):
        pass


def fetch_from_hub(settings: HubSettings, manifest: dict[str, str], files: list[str]) -> Path:
    """Return a folder holding every file at settings.revision, verified. Uses the HF cache
    first when it matches the manifest, else downloads. Raises WeightsError when the hub
    cannot provide them."""
    import huggingface_hub
    from huggingface_hub import hf_hub_download

    def get(rel: str, local_only: bool) -> Path:
        return Path(hf_hub_download(settings.repo, rel, revision=settings.revision,
                                    local_files_only=local_only))

    cache_problem = None
    try:  # 1. a complete cached copy of this revision
        paths = [get(rel, True) for rel in files]
        folder = paths[0].parents[len(Path(files[0]).parts) - 1]
        verify_folder(folder, manifest, files)
        return folder
    except WeightsError as e:
        # A stale copy (a branch that has moved since, to weights matching a newer manifest) must
        # not block the hub: ask it. A pinned commit gives the same cached files and error again.
        cache_problem = f"cached copy: {e}"
    except Exception:
        pass
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        raise WeightsError(cache_problem or
                           f"hub {settings.repo}@{settings.revision} is not cached and HF_HUB_OFFLINE is set")
    endpoint = _endpoint()
    try:
        _probe(endpoint, settings.probe_timeout)
    except OSError as e:
        raise WeightsError(f"hub {endpoint} is unreachable ({e})"
                           + (f"; {cache_problem}" if cache_problem else "")) from None
    paths = []
    for rel in files:
        try:
            paths.append(get(rel, False))
        except Exception as e:  # name the file: "404 Client Error." alone says nothing
            raise WeightsError(f"hub {settings.repo}@{settings.revision}: download of {rel} failed "
                               f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    folder = paths[0].parents[len(Path(files[0]).parts) - 1]
    verify_folder(folder, manifest, files)
    return folder


def resolve_weights(settings: HubSettings | None = None, nets=tuple(NETS),
                    detector: str = DEFAULT_DETECTOR) -> WeightsSource:
    """Pick a verified weights folder: the hub if set and good, else the local copy."""
    settings = settings or HubSettings.from_env()
    manifest = load_manifest(settings.manifest)
    files = required_files(nets, detector)
    hub_problem = "no hub repo set (MASKWATCH_HUB_REPO)"
    if settings.repo:
        try:
            folder = fetch_from_hub(settings, manifest, files)
            log.info("weights: hub %s @ %s", settings.repo, settings.revision)
            return WeightsSource("hub", folder, settings.repo, settings.revision)
        except WeightsError as e:
            hub_problem = str(e)
    try:
        verify_folder(settings.local_dir, manifest, files)
    except WeightsError as e:
        raise WeightsError(f"no usable weights. Hub: {hub_problem}. Local: {e}") from None
    if settings.repo:
        log.warning("weights: falling back to local %s because %s", settings.local_dir, hub_problem)
    else:
        log.info("weights: local %s (%s)", settings.local_dir, hub_problem)
    return WeightsSource("local", settings.local_dir, note=hub_problem if settings.repo else "")


# Sane ranges of the classifier's config.json values: anything outside is refused before a net
# is built (a channel count of 3e8 would allocate gigabytes; a NaN margin gives NaN crops).
CLASSIFIER_RANGES = {"crop_size": (16, 256), "margin": (0.0, 1.0), "hidden": (1, 4096),
                     "channel": (1, 512), "blocks": (1, 8), "temperature": (0.05, 20.0),
                     "logit_bias": (-20.0, 20.0)}


def _int_in(where: str, key: str, v, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise WeightsError(f"{where}: {key} = {json.dumps(v)[:40]} must be a whole number "
                           f"from {lo} to {hi}; refused")
    return v


def _number_in(where: str, key: str, v, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise WeightsError(f"{where}: {key} = {json.dumps(v)[:40]} must be a finite number "
                           f"from {lo} to {hi}; refused")
    return float(v)


def classifier_config(data, where: str = "classifier/config.json") -> ClassifierConfig:
    """A classifier config.json (parsed) -> ClassifierConfig, every value checked: WeightsError
    naming the key otherwise. Keys the config does not name keep their defaults; a key that is
    not a ClassifierConfig field is refused (it would otherwise be silently dropped)."""
    if not isinstance(data, dict):
        raise WeightsError(f"{where}: expected a JSON object; refused")
    unknown = sorted(set(data) - set(ClassifierConfig.__dataclass_fields__))
    if unknown:
        raise WeightsError(f"{where}: {json.dumps(unknown[0])[:40]} is not a classifier setting; refused")
    r, kw = CLASSIFIER_RANGES, {}
    if "crop_size" in data:
        kw["crop_size"] = _int_in(where, "crop_size", data["crop_size"], *r["crop_size"])
    if "margin" in data:
        m = data["margin"]
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not math.isfinite(m) \
                or not r["margin"][0] <= m <= r["margin"][1]:
            raise WeightsError(f"{where}: margin = {json.dumps(m)[:40]} must be a finite number "
                               f"from {r['margin'][0]} to {r['margin'][1]}; refused")
        kw["margin"] = float(m)
    if "channels" in data:
        ch = data["channels"]
        lo, hi = r["blocks"]
        if not isinstance(ch, list) or not lo <= len(ch) <= hi:
            raise WeightsError(f"{where}: channels must be a list of {lo} to {hi} counts; refused")
        kw["channels"] = tuple(_int_in(where, f"channels[{k}]", c, *r["channel"]) for k, c in enumerate(ch))
    if "hidden" in data:
        kw["hidden"] = _int_in(where, "hidden", data["hidden"], *r["hidden"])
    if "num_classes" in data:
        kw["num_classes"] = _int_in(where, "num_classes", data["num_classes"], len(CLASSES), len(CLASSES))
    if "temperature" in data:
        kw["temperature"] = _number_in(where, "temperature", data["temperature"], *r["temperature"])
    if "logit_bias" in data:
        lb = data["logit_bias"]
        if not isinstance(lb, list) or len(lb) != len(CLASSES):
            raise WeightsError(f"{where}: logit_bias must be a list of {len(CLASSES)} numbers; refused")
        kw["logit_bias"] = tuple(_number_in(where, f"logit_bias[{k}]", v, *r["logit_bias"]) for k, v in enumerate(lb))
    config = ClassifierConfig(**kw)
    if config.crop_size < 2 ** len(config.channels):
        raise WeightsError(f"{where}: crop_size {config.crop_size} is too small for "
                           f"{len(config.channels)} conv blocks (at least {2 ** len(config.channels)}); refused")
    return config


def _read(folder: Path, rel: str, manifest: dict[str, str] | None) -> bytes:
    """The bytes of folder/rel; with a manifest, checked against its sha256 (the very bytes
    that are then parsed, so a file swapped after resolve_weights' check is refused too)."""
    try:
        data = (Path(folder) / rel).read_bytes()
    except OSError as e:
        raise WeightsError(f"{rel} in {folder} is unreadable ({e.strerror or e}); refused") from None
    if manifest is not None and hashlib.sha256(data).hexdigest() != manifest.get(rel):
        raise WeightsError(f"{rel} from {folder} fails its checksum; refused")
    return data


CONFIG_FIELDS = ("architecture", "config", "source", "training")
"""The keys of every net's config.json (see the module docstring)."""


def net_name(net: torch.nn.Module) -> str:
    """The weights/ folder name of a net (pnet, rnet, onet, classifier)."""
    for name, cls in NETS.items():
        if type(net) is cls:
            return name
    raise ValueError(f"{type(net).__name__} is not one of MaskWatch's nets ({', '.join(NETS)})")


def save_net(net: torch.nn.Module, folder: Path, *, source: str, training: dict | None = None) -> Path:
    """Write one net's folder (model.safetensors + config.json), the form load_net reads back
    from <weights folder>/<net_name(net)>. -> the folder."""
    name = net_name(net)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    doc = {"architecture": NETS[name].__name__,
           "config": net.config_dict() if isinstance(net, MaskClassifier) else {},
           "source": source}
    if training:
        doc["training"] = training
    (folder / "config.json").write_text(json.dumps(doc, indent=2) + "\n")
    return folder


def load_net(name: str, folder: Path, manifest: dict[str, str] | None = None,
             prefix: str = "") -> torch.nn.Module:
    """Build net `name` from folder/<prefix>name/config.json (written by save_net; every value
    checked first) and load its safetensors strictly; with a manifest, both files' bytes must
    match it. prefix: a detector weight set's (net_prefix, e.g. "camera/"). WeightsError for a
    file that is unreadable, fails its checksum, or a config out of range."""
    cls = NETS[name]
    where = f"{prefix}{name}/config.json in {folder}"
    raw = _read(folder, f"{prefix}{name}/config.json", manifest)
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise WeightsError(f"{where}: unreadable ({e}); refused") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        raise WeightsError(f"{where}: expected an object with {', '.join(CONFIG_FIELDS)}; refused")
    unknown = sorted(set(doc) - set(CONFIG_FIELDS))
    if unknown:
        raise WeightsError(f"{where}: unknown key {json.dumps(unknown[0])[:40]} (expected "
                           f"{', '.join(CONFIG_FIELDS)}); refused")
    arch = doc.get("architecture")
    if arch != cls.__name__:
        raise WeightsError(f"{where}: architecture {json.dumps(arch)[:40]} is not {cls.__name__}; refused")
    if name == "classifier":
        net = cls(classifier_config(doc["config"], where))
    elif doc["config"]:
        raise WeightsError(f"{where}: {cls.__name__} takes no config (got {json.dumps(doc['config'])[:60]}); refused")
    else:
        net = cls()
    try:
        state = safetensors_load(_read(folder, f"{prefix}{name}/model.safetensors", manifest))
    except WeightsError:
        raise
    except Exception as e:  # not a safetensors file
        raise WeightsError(f"{prefix}{name}/model.safetensors in {folder} is unreadable ({e}); refused") from None
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"{prefix}{name}/model.safetensors in {folder} does not fit its config.json "
                           f"({str(e).splitlines()[0]}); refused") from None
    return net.eval()


def load_nets(settings: HubSettings | None = None, nets=tuple(NETS),
              detector: str = DEFAULT_DETECTOR) -> tuple[dict[str, torch.nn.Module], WeightsSource]:
    """-> ({name: net in eval mode}, source); the detector nets from weight set `detector`
    (DETECTOR_WEIGHTS)."""
    settings = settings or HubSettings.from_env()
    source = resolve_weights(settings, nets, detector)
    manifest = load_manifest(settings.manifest)
    return {n: load_net(n, source.folder, manifest, net_prefix(n, detector)) for n in nets}, source
