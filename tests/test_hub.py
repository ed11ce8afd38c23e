"""pipeline.engine.weights end to end: the REAL huggingface_hub client against a local fake hub.

huggingface_hub reads HF_ENDPOINT/HF_HOME/HF_HUB_OFFLINE when it is imported, so every run is a
fresh interpreter (hub_server.run_steps) with its own environment. To keep the suite fast, one
interpreter runs several load steps in a row (MASKWATCH_* settings are read per call); the tests
below each check their own step. Runs:

  live     hub up, empty cache: download, cache reuse, branches, every kind of bad hub.
  down     the same cache, the hub stopped: cached copies still load, the rest falls back fast.
  offline  the same cache, HF_HUB_OFFLINE=1.
  cli      hub down and a corrupted local folder: `python -m pipeline detect` exits 1, one line.
"""
from __future__ import annotations

import re
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.support.hub_server import (PYTHON, ROOT, HubServer, clean_env, flip_bytes, make_weights,  # noqa: E402
                        read_folder, run_steps)

REQUIRED = [f"{n}/{f}" for n in ("pnet", "rnet", "onet", "classifier")
            for f in ("config.json", "model.safetensors")]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """a: weights set A (local copy and first hub upload); b: set B (another classifier);
    broken: A with a flipped byte in pnet/model.safetensors (its manifest still A's)."""
    base = tmp_path_factory.mktemp("weights")
    a = make_weights(base / "a", seed=0)
    b = make_weights(base / "b", seed=1)
    broken = make_weights(base / "broken", seed=0)
    flip_bytes(broken / "pnet" / "model.safetensors")
    assert (a / "manifest.json").read_text() != (b / "manifest.json").read_text()
    return {"a": a, "b": b, "broken": broken, "home": base / "hf_home"}


@pytest.fixture(scope="module")
def hub(folders):
    a, b = folders["a"], folders["b"]
    with HubServer() as server:
        shas = {}
        shas["good1"] = server.commit_folder("mw/good", a)
        shas["good2"] = server.commit("mw/good", {"README.md": b"# MaskWatch weights\n"})  # main moves on
        server.set_branch("mw/good", "release/v1", shas["good1"])
        files = read_folder(a)
        files["pnet/model.safetensors"] = (folders["broken"] / "pnet" / "model.safetensors").read_bytes()
        server.commit("mw/tampered", files)
        server.commit_folder("mw/lying", a)
        server.corrupt("mw/lying", "onet/model.safetensors")
        server.commit("mw/missing", {k: v for k, v in read_folder(a).items() if k != "rnet/model.safetensors"})
        shas["m1"] = server.commit_folder("mw/moving", a)
        shas["m2"] = server.commit_folder("mw/moving", b)
        server.set_branch("mw/moving", "main", shas["m1"])
        server.shas = shas
        yield server


def step(repo, rev, local, pin=True, **kw):
    """Load with weights from hub repo@rev, else folder `local`; pinned by local's manifest
    (named explicitly, as MASKWATCH_WEIGHTS_MANIFEST), or with pin=False by the committed one."""
    return {"env": {"MASKWATCH_HUB_REPO": repo, "MASKWATCH_HUB_REVISION": rev,
                    "MASKWATCH_WEIGHTS_DIR": str(local),
                    "MASKWATCH_WEIGHTS_MANIFEST": str(Path(local) / "manifest.json") if pin else ""}, **kw}


LIVE = ["sha", "cached", "branch", "slash_branch", "tampered", "lying", "missing", "bad_revision",
        "no_repo", "moving_1", "moving_2", "override_no_pin"]


FAST_S = 8.0
"""'Fast' for a load from the hub's cache or a fallback: well under the ~23 s that
huggingface_hub's retries take on an unreachable hub, with room for a machine whose cores are
busy (a verified load of all four nets once took 3.6 s there, against 0.5 s quiet). Whether
the network was touched at all is checked on the server's request log instead."""

@pytest.fixture(scope="module")
def live(hub, folders):
    """One interpreter, hub up, empty HF cache. Stops the hub afterwards (for `down`)."""
    a, s = folders["a"], hub.shas
    steps = {
        "sha": step("mw/good", s["good1"], a, forward=True),
        "cached": step("mw/good", s["good1"], a),
        "branch": step("mw/good", "main", a),
        "slash_branch": step("mw/good", "release/v1", a),
        "tampered": step("mw/tampered", "main", a),
        "lying": step("mw/lying", "main", a),
        "missing": step("mw/missing", "main", a),
        "bad_revision": step("mw/good", "no-such-branch", a),
        "no_repo": step("mw/nope", "main", a),
        "moving_1": step("mw/moving", "main", a),
        # the hub's main moves to set B, and so does the local copy (a new release)
        "moving_2": step("mw/moving", "main", folders["b"],
                         post=[f"{hub.url}/_test/refs/mw/moving", {"branch": "main", "sha": s["m2"]}]),
        # set A on the hub and in MASKWATCH_WEIGHTS_DIR, with A's manifest beside it, but no
        # explicit pin: the committed manifest decides, and neither source matches it
        "override_no_pin": step("mw/good", s["good1"], a, pin=False),
    }
    env = clean_env(HF_ENDPOINT=hub.url, HF_HOME=folders["home"])
    results = dict(zip(LIVE, run_steps([steps[k] for k in LIVE], env)))
    hub.stop()
    return results


@pytest.fixture(scope="module")
def down(live, hub, folders):
    """The same HF cache; the hub at the same address is now stopped."""
    s, a = hub.shas, folders["a"]
    env = clean_env(HF_ENDPOINT=hub.url, HF_HOME=folders["home"])
    names = ["cached_sha", "cached_branch", "uncached", "neither"]
    steps = [step("mw/good", s["good1"], a), step("mw/good", "main", a),
             step("mw/uncached", "main", a), step("mw/uncached", "main", folders["broken"])]
    return dict(zip(names, run_steps(steps, env)))


@pytest.fixture(scope="module")
def offline(live, hub, folders):
    env = clean_env(HF_ENDPOINT=hub.url, HF_HOME=folders["home"], HF_HUB_OFFLINE="1")
    names = ["cached_sha", "uncached"]
    steps = [step("mw/good", hub.shas["good1"], folders["a"]), step("mw/uncached", "main", folders["a"])]
    return dict(zip(names, run_steps(steps, env)))


def snapshot_of(result) -> str:
    return Path(result.folder).name


# ---- hub up ----------------------------------------------------------------------------------
def test_download_and_load_from_hub(live, hub, folders):
    r = live["sha"]
    assert r.error is None and r.kind == "hub", r.raw
    assert Path(r.folder).is_relative_to(folders["home"]), r.folder
    assert snapshot_of(r) == hub.shas["good1"]
    assert r.raw["describe"] == f"hub mw/good @ {hub.shas['good1']}"
    # every net ran a forward pass
    assert r.raw["shapes"]["pnet"] == [[2, 4, 7, 7], [2, 7, 7]]
    assert r.raw["shapes"]["rnet"] == [[2, 4], [2]]
    assert r.raw["shapes"]["onet"] == [[2, 4], [2, 10], [2]]
    assert r.raw["shapes"]["classifier"] == [[2, 3]]
    # the server saw exactly the needed files downloaded, at the pinned commit
    got = hub.downloads(r.t0, r.t1)
    assert sorted(p for _, _, p in got) == sorted(REQUIRED)
    assert {(repo, rev) for repo, rev, _ in got} == {("mw/good", hub.shas["good1"])}
    assert any(line.startswith("maskwatch.hub INFO: weights: hub mw/good") for line in r.log), r.log


def test_second_load_uses_the_cache_without_network(live, hub):
    r = live["cached"]
    assert r.kind == "hub" and snapshot_of(r) == hub.shas["good1"], r.raw
    assert hub.requests(r.t0, r.t1) == [], "a cached, verified copy must not touch the network"
    assert r.elapsed < FAST_S, r.elapsed


def test_branch_revision_resolves_to_its_commit(live, hub):
    r = live["branch"]
    assert r.kind == "hub", r.raw
    assert snapshot_of(r) == hub.shas["good2"]           # main, after the README commit
    assert r.raw["revision"] == "main"


def test_branch_name_with_a_slash(live, hub):
    r = live["slash_branch"]
    assert r.kind == "hub", r.raw
    assert snapshot_of(r) == hub.shas["good1"]


def _one_fallback_line(r) -> str:
    assert len(r.hub_lines) == 1, r.log
    line = r.hub_lines[0]
    assert line.startswith("maskwatch.hub WARNING: weights: falling back to local"), line
    return line


def test_hub_file_with_wrong_checksum_is_refused(live, folders):
    r = live["tampered"]
    assert r.kind == "local" and Path(r.folder) == folders["a"], r.raw
    line = _one_fallback_line(r)
    assert "pnet/model.safetensors" in line and "fails its checksum" in line and "refused" in line, line


def test_corrupted_transfer_is_refused(live, hub, folders):
    """The hub advertises the right size and ETag but sends altered bytes."""
    r = live["lying"]
    assert r.kind == "local" and Path(r.folder) == folders["a"], r.raw
    line = _one_fallback_line(r)
    assert "onet/model.safetensors" in line and "fails its checksum" in line, line
    assert ("mw/lying", "main", "onet/model.safetensors") in hub.downloads(r.t0, r.t1)


def test_missing_file_on_hub_falls_back_with_a_clear_line(live, folders):
    r = live["missing"]
    assert r.kind == "local" and Path(r.folder) == folders["a"], r.raw
    line = _one_fallback_line(r)
    assert "rnet/model.safetensors" in line and "mw/missing" in line, line
    assert "Traceback" not in "\n".join(r.log)


def test_unknown_revision_falls_back(live):
    r = live["bad_revision"]
    assert r.kind == "local", r.raw
    line = _one_fallback_line(r)
    assert "no-such-branch" in line and "Revision" in line, line


def test_unknown_repo_falls_back(live):
    r = live["no_repo"]
    assert r.kind == "local", r.raw
    line = _one_fallback_line(r)
    assert "mw/nope" in line and "Repository" in line, line


def test_moved_branch_with_stale_cache_fetches_the_new_commit(live, hub):
    """Cached main (set A) no longer matches the new manifest (set B) once main has moved to
    B: the stale cache must not block the hub; the new commit is downloaded and used."""
    first, second = live["moving_1"], live["moving_2"]
    assert first.kind == "hub" and snapshot_of(first) == hub.shas["m1"], first.raw
    assert second.kind == "hub", second.raw
    assert snapshot_of(second) == hub.shas["m2"]
    assert ("mw/moving", "main", "classifier/model.safetensors") in hub.downloads(second.t0, second.t1)


def test_weights_dir_does_not_pin_itself_or_the_hub(live):
    """MASKWATCH_WEIGHTS_DIR used to supply the manifest too, so any self-consistent folder,
    and any hub repo matching it, passed the checksum pin."""
    r = live["override_no_pin"]
    assert r.kind is None and r.error, r.raw
    hub_part, local_part = r.error.split(" Local: ")
    assert "classifier/config.json" in hub_part and "fails its checksum" in hub_part, r.error
    assert "classifier/config.json" in local_part and "fails its checksum" in local_part, r.error


# ---- hub down / offline ------------------------------------------------------------------------
def test_cached_copy_used_when_hub_is_down(down, hub):
    r = down["cached_sha"]
    assert r.kind == "hub" and snapshot_of(r) == hub.shas["good1"], r.raw
    assert r.elapsed < FAST_S, r.elapsed
    b = down["cached_branch"]
    assert b.kind == "hub" and snapshot_of(b) == hub.shas["good2"], b.raw


def test_unreachable_hub_falls_back_fast(down, folders):
    r = down["uncached"]
    assert r.kind == "local" and Path(r.folder) == folders["a"], r.raw
    assert r.elapsed < FAST_S, f"fallback took {r.elapsed:.1f} s"
    line = _one_fallback_line(r)
    assert "unreachable" in line, line


def test_neither_source_raises_weights_error_naming_both(down):
    r = down["neither"]
    assert r.kind is None and r.error, r.raw
    assert r.error.startswith("no usable weights."), r.error
    hub_part, local_part = r.error.split(" Local: ")
    assert "unreachable" in hub_part, r.error
    assert "pnet/model.safetensors" in local_part and "fails its checksum" in local_part, r.error
    assert r.elapsed < FAST_S, r.elapsed


def test_offline_mode_uses_cache_and_falls_back_instantly(offline, hub):
    r = offline["cached_sha"]
    assert r.kind == "hub" and snapshot_of(r) == hub.shas["good1"], r.raw
    u = offline["uncached"]
    assert u.kind == "local", u.raw
    assert "HF_HUB_OFFLINE" in _one_fallback_line(u)
    assert u.elapsed < FAST_S, u.elapsed


def _png(path: Path, w: int = 32, h: int = 32) -> Path:
    raw = b"".join(b"\x00" + bytes([120, 160, 200]) * w for _ in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def test_cli_exits_1_with_one_line_when_no_weights(down, hub, folders, tmp_path):
    img = _png(tmp_path / "face.png")
    env = clean_env(HF_ENDPOINT=hub.url, HF_HOME=folders["home"], MASKWATCH_HUB_REPO="mw/uncached",
                    MASKWATCH_HUB_REVISION="main", MASKWATCH_WEIGHTS_DIR=folders["broken"])
    p = subprocess.run([PYTHON, "-m", "pipeline", "detect", str(img), "--json"], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr
    assert re.match(r"^error \(weights\): no usable weights\. Hub: hub .* is unreachable .* Local: "
                    r"pnet/model\.safetensors .* fails its checksum", lines[0]), lines[0]
