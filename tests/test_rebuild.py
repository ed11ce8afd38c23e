"""training.rebuild plumbing: which detector gets released, classifier stages chained, hashes."""
from __future__ import annotations

import json

import pytest

from pipeline.engine.weights import sha256_file
from training import rebuild, train_classifier, train_detector


def _fake_training(monkeypatch, beats: bool, dogs: int = 0) -> list:
    """Stand-ins for the detector fine-tuning (photo and camera weights), its dlib and dogs
    checks, the classifier training and the conversion. -> the list of "detector", "camera"
    and (epochs, lr, init, ema, config) of the classifier stages trained, in order."""
    calls = []

    def fake_run_all(out, **kw):
        which = "camera" if kw.get("camera_share") else "detector"
        calls.append(which)
        if which == "camera":
            assert kw["camera_share"] == rebuild.CAMERA_SHARE and tuple(kw["nets"]) == ("rnet", "onet")
        for n in ("pnet", "rnet", "onet"):
            (out / n).mkdir(parents=True)
            (out / n / "config.json").write_text("{}")
            (out / n / "model.safetensors").write_bytes(
                (f"tuned {n}" if which == "detector" else f"camera {n}" if n != "pnet" else "original pnet").encode())
        if which == "camera":
            return {"scenes": 1}
        (out / "detector_metrics.json").write_text(json.dumps({"fine_tuning": {"verdict": "beats"}}))
        summary = {"release_ok": beats, "comparison": ["x"], "dlib_recall": 0.95, "faces_on_dogs": 0}
        (out / "summary.json").write_text(json.dumps(summary))     # run_all's closing file
        return summary

    def fake_train(epochs, lr, repeat, init, out, report, **kw):
        calls.append((epochs, lr, init, kw["ema"], kw["config"]))
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text("{}")
        k = sum(c not in ("detector", "camera") for c in calls)    # stages trained so far
        (out / "model.safetensors").write_bytes(f"stage {k}".encode())
        result = {"stage": k, "best_epoch": 1, "validation": {"ilc": {"metrics": {
            "binary_accuracy": 0.9, "macro_f1": 0.8, "accuracy": 0.85}}}}
        report.write_text(json.dumps(result))
        return result

    def fake_convert(out, **kw):
        for n in ("pnet", "rnet", "onet"):
            (out / n).mkdir(parents=True, exist_ok=True)
            (out / n / "config.json").write_text("{}")
            (out / n / "model.safetensors").write_bytes(f"original {n}".encode())

    from training import evaluate_views
    monkeypatch.setattr(evaluate_views, "fit_rule", lambda w: {"temperature": 1.0, "logit_bias": [0.0, 0.0, 0.0]})
    monkeypatch.setattr(evaluate_views, "write_rule", lambda w, t, b: None)
    monkeypatch.setattr(rebuild, "PARALLEL", False)       # a spawned process would not see the fakes
    monkeypatch.setattr(train_detector, "run_all", fake_run_all)
    monkeypatch.setattr(train_detector, "dlib_recall", lambda folder: 0.95)
    monkeypatch.setattr(train_detector, "faces_on_faceless_photo", lambda folder: dogs)
    monkeypatch.setattr(train_classifier, "train", fake_train)
    monkeypatch.setattr("training.convert_mtcnn.convert", fake_convert)
    return calls


STAGES = tuple({"epochs": e, "lr": 1e-3, "repeat": {"ilc": 1}} for e in (8, 6)) + (
    {"epochs": 5, "lr": 1e-3, "repeat": {"ilc": 1}, "ema": 0.99, "config": {"channels": (8, 16)}},)


@pytest.mark.parametrize("beats", [True, False])
def test_rebuild_releases_the_checked_detector_and_chains_classifier_stages(tmp_path, monkeypatch, beats):
    calls = _fake_training(monkeypatch, beats)
    out = tmp_path / "out"
    log = rebuild.rebuild(out=out, work=tmp_path / "work", progress=False, stages=STAGES)
    assert calls.pop(0) == "detector" and calls.pop(0) == "camera"
    assert [c[0] for c in calls] == [8, 6, 5] and calls[0][2] is None
    assert calls[2][2] == tmp_path / "work" / "classifier_stage2" / "model.safetensors"
    # a stage's weight average and architecture reach train(); the defaults otherwise
    assert calls[0][3:] == (0.0, None)
    assert calls[2][3] == 0.99 and calls[2][4].channels == (8, 16) and calls[2][4].crop_size == 64
    assert (out / "classifier" / "model.safetensors").read_bytes() == b"stage 3"
    want = b"tuned rnet" if beats else b"original rnet"
    assert (out / "rnet" / "model.safetensors").read_bytes() == want
    assert log["sha256"]["rnet/model.safetensors"] == sha256_file(out / "rnet" / "model.safetensors")
    assert not any(log["same_as_committed"].values())
    assert json.loads((tmp_path / "work" / "rebuild.json").read_text())["detector_verdict"]["release_ok"] is beats
    # the camera weights: the camera run's R-Net and O-Net, hashed and compared like the others
    assert (out / "camera" / "onet" / "model.safetensors").read_bytes() == b"camera onet"
    assert (out / "camera" / "pnet" / "model.safetensors").read_bytes() == b"original pnet"
    assert log["sha256"]["camera/onet/model.safetensors"] == sha256_file(out / "camera" / "onet" / "model.safetensors")
    assert set(log["same_as_committed"]) == {f"{p}{n}/model.safetensors" for p in ("", "camera/")
                                             for n in ("pnet", "rnet", "onet")} | {"classifier/model.safetensors"}


def test_a_camera_detector_that_finds_a_dog_face_is_not_released(tmp_path, monkeypatch):
    """The camera weights must pass the photo detector's checks that need no held-out pass (dlib
    recall, no face on the faceless dogs photo); otherwise the camera set is the photo one."""
    _fake_training(monkeypatch, True, dogs=1)
    out = tmp_path / "out"
    log = rebuild.rebuild(out=out, work=tmp_path / "work", progress=False, stages=STAGES[:1])
    assert (out / "camera" / "onet" / "model.safetensors").read_bytes() == b"tuned onet"
    assert log["camera_detector_verdict"] == {"release_ok": False, "dlib_recall": 0.95, "faces_on_dogs": 1}
    summary = json.loads((tmp_path / "work" / "detector_camera" / "summary.json").read_text())
    assert summary["faces_on_dogs"] == 1 and summary["release_ok"] is False
    assert not (tmp_path / "work" / "detector_camera" / "onet").exists()   # no failing try copied out


def test_rebuild_into_weights_writes_the_reports_manifest_and_model_card(tmp_path, monkeypatch):
    from training import evaluate, evaluate_detector, model_card
    _fake_training(monkeypatch, True)
    out, done = tmp_path / "weights", []
    monkeypatch.setattr(rebuild, "WEIGHTS", out)          # out is the release folder
    monkeypatch.setattr("training.manifest.write_manifest", lambda folder: done.append("manifest"))
    monkeypatch.setattr(evaluate_detector, "evaluate", lambda w, o, **kw: done.append(kw["fine_tuning"]))
    monkeypatch.setattr(evaluate, "main", lambda argv: done.append("metrics"))
    monkeypatch.setattr(model_card, "main", lambda argv: done.append("card"))
    rebuild.rebuild(out=out, work=tmp_path / "work", progress=False, stages=STAGES)
    # the detector evaluation runs once, with the fine-tuning verdict of this rebuild
    assert done == ["manifest", {"verdict": "beats", "command": "python -m training.rebuild"}, "metrics", "card"]
    assert json.loads((out / "classifier_validation.json").read_text())["stage"] == 3
    assert (out / "classifier" / "model.safetensors").read_bytes() == b"stage 3"


def test_rebuild_passes_stage_sources_augmentation_selection_and_calibrates(tmp_path, monkeypatch):
    """A stage's sources, augmentation, selection and label fixes reach train(); with
    calibrate, the fitted temperature and `incorrect` rule are written into the released
    classifier's config (training.evaluate_views)."""
    from training import evaluate_views as ev
    from training.augment import AugmentConfig

    _fake_training(monkeypatch, True)
    seen_kw, written = [], []
    fake = train_classifier.train

    def spy(*a, **kw):
        seen_kw.append(kw)
        return fake(*a, **kw)
    monkeypatch.setattr(train_classifier, "train", spy)
    monkeypatch.setattr(ev, "fit_rule", lambda w: {"temperature": 0.8, "logit_bias": [0.0, -0.4, -1.1]})
    monkeypatch.setattr(ev, "write_rule", lambda w, t, b: written.append((w, t, b)))
    stages = ({"epochs": 2, "lr": 1e-3, "repeat": {"ilc": 1}, "sources": ["ilc", "adi"], "select": "views",
               "augment": {"small_face_p": 0.5, "camera_p": 0.3}, "label_fixes": True},)
    out = tmp_path / "out"
    log = rebuild.rebuild(out=out, work=tmp_path / "work", progress=False, stages=stages, calibrate=True)
    kw = seen_kw[0]
    assert kw["sources"] == ("ilc", "adi") and kw["select"] == "views" and kw["label_fixes"] is True
    assert kw["aug"] == AugmentConfig(small_face_p=0.5, camera_p=0.3)
    assert written == [(out, 0.8, [0.0, -0.4, -1.1])]
    assert log["classifier_rule"] == {"temperature": 0.8, "logit_bias": [0.0, -0.4, -1.1]}


def test_rebuild_resumes_from_the_finished_stages_of_its_work_folder(tmp_path, monkeypatch):
    """A run cut off part way (a session ends) is resumed by giving the same work folder: the
    finished detector and classifier stages are taken from their outputs; a stage cut off before
    its report was written is trained again, from the previous stage's weights."""
    calls = _fake_training(monkeypatch, True)
    work, out = tmp_path / "work", tmp_path / "out"
    first = rebuild.rebuild(out=out, work=work, progress=False, stages=STAGES)
    assert len(calls) == 5                                 # detector, camera detector + 3 stages
    (work / "classifier_stage3.json").unlink()             # stage 3 cut off: no report yet
    (work / "classifier_stage3" / "model.safetensors").write_bytes(b"half-trained")
    again = rebuild.rebuild(out=out, work=work, progress=False, stages=STAGES)
    assert len(calls) == 6 and calls[5][0] == 5            # only stage 3 trained again ...
    assert calls[5][2] == work / "classifier_stage2" / "model.safetensors"     # ... from stage 2
    assert (out / "classifier" / "model.safetensors").read_bytes() == b"stage 4"
    assert again["classifier_stages"][:2] == first["classifier_stages"][:2]
    assert again["detector_verdict"] == first["detector_verdict"]
    assert again["camera_detector_verdict"] == first["camera_detector_verdict"]
    rebuild.rebuild(out=out, work=work, progress=False, stages=STAGES)
    assert len(calls) == 6                                 # everything finished: nothing trained


def test_the_camera_detector_trains_in_a_second_process_beside_the_classifier(tmp_path, monkeypatch):
    """With PARALLEL, the camera detector step runs in a spawned process while the classifier
    trains here; its weights and verdict reach the release as in turn."""
    import os

    from tests.support.rebuild_fakes import fake_camera_detector
    calls = _fake_training(monkeypatch, True)
    monkeypatch.setattr(rebuild, "PARALLEL", True)
    monkeypatch.setattr(rebuild, "camera_detector", fake_camera_detector)
    out, work = tmp_path / "out", tmp_path / "work"
    log = rebuild.rebuild(out=out, work=work, progress=False, stages=STAGES[:1], seed=7)
    assert "camera" not in calls                                    # not trained in this process
    summary = json.loads((work / "detector_camera" / "summary.json").read_text())
    assert summary["pid"] != os.getpid() and summary["seed"] == 7
    assert (out / "camera" / "rnet" / "model.safetensors").read_bytes() == b"spawned camera rnet"
    assert log["camera_detector_verdict"] == {"release_ok": True, "dlib_recall": 0.97, "faces_on_dogs": 0}


def test_the_camera_detector_tries_the_next_seed_when_a_seed_fails_its_checks(tmp_path, monkeypatch):
    """Seed 1234 finds a dog face: seed 1235 is trained and released; every try is recorded."""
    def fake_run_all(out, seed, **kw):
        for n in ("pnet", "rnet", "onet"):
            (out / n).mkdir(parents=True)
            (out / n / "config.json").write_text("{}")
            (out / n / "model.safetensors").write_bytes(f"seed {seed} {n}".encode())
        return {"seed": seed}
    monkeypatch.setattr(train_detector, "run_all", fake_run_all)
    monkeypatch.setattr(train_detector, "dlib_recall", lambda folder: 0.97)
    monkeypatch.setattr(train_detector, "faces_on_faceless_photo", lambda folder: int(folder.name == "seed_1234"))
    summary = rebuild.camera_detector(tmp_path / "cam", 1234, False, tmp_path)
    assert (tmp_path / "cam" / "onet" / "model.safetensors").read_bytes() == b"seed 1235 onet"
    assert summary["release_ok"] and summary["seed"] == 1235 and summary["faces_on_dogs"] == 0
    assert [(t["seed"], t["release_ok"]) for t in summary["tries"]] == [(1234, False), (1235, True)]
    assert json.loads((tmp_path / "cam" / "summary.json").read_text())["tries"] == summary["tries"]
    assert not (tmp_path / "cam" / "seed_1236").exists()                # stops at the first pass
