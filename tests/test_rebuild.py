"""training.rebuild plumbing: which detector gets released, classifier stages chained, hashes."""
from __future__ import annotations

import json

import pytest

from pipeline.hub import sha256_file
from training import rebuild, train_classifier, train_detector


@pytest.mark.parametrize("beats", [True, False])
def test_rebuild_releases_the_checked_detector_and_chains_classifier_stages(tmp_path, monkeypatch, beats):
    calls = []

    def fake_run_all(out, **kw):
        for n in ("pnet", "rnet", "onet"):
            (out / n).mkdir(parents=True)
            (out / n / "config.json").write_text("{}")
            (out / n / "model.safetensors").write_bytes(f"tuned {n}".encode())
        return {"release_ok": beats, "comparison": ["x"], "dlib_recall": 0.95, "faces_on_dogs": 0}

    def fake_train(epochs, lr, repeat, init, out, report, **kw):
        calls.append((epochs, lr, init))
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(f"stage {len(calls)}".encode())
        return {"best_epoch": 1, "validation": {"ilc": {"metrics": {
            "binary_accuracy": 0.9, "macro_f1": 0.8, "accuracy": 0.85}}}}

    def fake_convert(out, **kw):
        for n in ("pnet", "rnet", "onet"):
            (out / n).mkdir(parents=True, exist_ok=True)
            (out / n / "config.json").write_text("{}")
            (out / n / "model.safetensors").write_bytes(f"original {n}".encode())

    monkeypatch.setattr(train_detector, "run_all", fake_run_all)
    monkeypatch.setattr(train_classifier, "train", fake_train)
    monkeypatch.setattr("training.convert_mtcnn.convert", fake_convert)
    out = tmp_path / "out"
    stages = tuple({"epochs": e, "lr": 1e-3, "repeat": {"ilc": 1}} for e in (8, 6, 5))
    log = rebuild.rebuild(out=out, work=tmp_path / "work", progress=False, stages=stages)
    assert [c[0] for c in calls] == [8, 6, 5] and calls[0][2] is None
    assert calls[2][2] == tmp_path / "work" / "classifier_stage2" / "model.safetensors"
    assert (out / "classifier" / "model.safetensors").read_bytes() == b"stage 3"
    want = b"tuned rnet" if beats else b"original rnet"
    assert (out / "rnet" / "model.safetensors").read_bytes() == want
    assert log["sha256"]["rnet/model.safetensors"] == sha256_file(out / "rnet" / "model.safetensors")
    assert not any(log["same_as_committed"].values())
    assert json.loads((tmp_path / "work" / "rebuild.json").read_text())["detector_verdict"]["release_ok"] is beats
