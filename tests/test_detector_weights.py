"""The two detector weight sets (pipeline.engine.config.DETECTOR_WEIGHTS): "photo", the default,
and "camera" (weights/camera/), pinned by the one manifest and chosen by the CLI and the pages."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from pipeline.cli import build_parser
from pipeline.engine import weights as hub
from pipeline.engine.config import DEFAULT_DETECTOR, DETECTOR_WEIGHTS
from pipeline.engine.weights import LOCAL_WEIGHTS, WeightsError, load_nets
from tests.support.hub_server import flip_bytes
from training.manifest import build_manifest


@pytest.fixture
def env(monkeypatch):
    for k in ("MASKWATCH_HUB_REPO", "MASKWATCH_WEIGHTS_DIR", "MASKWATCH_WEIGHTS_MANIFEST"):
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_camera_weights_share_pnet_and_the_classifier_but_not_rnet_and_onet(env):
    photo, src = load_nets()
    camera, src_camera = load_nets(detector="camera")
    assert src.folder == src_camera.folder == LOCAL_WEIGHTS
    assert _same(photo["pnet"], camera["pnet"]) and _same(photo["classifier"], camera["classifier"])
    assert not _same(photo["rnet"], camera["rnet"]) and not _same(photo["onet"], camera["onet"])
    doc = json.loads((LOCAL_WEIGHTS / "camera" / "onet" / "config.json").read_text())
    assert doc["training"]["camera_share"] > 0      # it says how it differs from the photo weights


def test_the_manifest_pins_both_detector_weight_sets(env):
    manifest = hub.load_manifest()
    assert set(hub.release_files()) <= set(manifest)
    assert {r for r in hub.release_files() if r.startswith("camera/")} == {
        f"camera/{n}/{f}" for n in ("pnet", "rnet", "onet") for f in ("config.json", "model.safetensors")}
    assert build_manifest(LOCAL_WEIGHTS)["files"] == json.loads((LOCAL_WEIGHTS / "manifest.json").read_text())["files"]


def test_a_tampered_camera_net_is_refused_and_the_photo_set_still_loads(env, tmp_path):
    copy = tmp_path / "w"
    for rel in hub.release_files():
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(LOCAL_WEIGHTS / rel, copy / rel)
    flip_bytes(copy / "camera" / "onet" / "model.safetensors")
    env.setenv("MASKWATCH_WEIGHTS_DIR", str(copy))
    with pytest.raises(WeightsError, match=r"camera/onet/model\.safetensors from .* fails its checksum"):
        load_nets(detector="camera")
    nets, source = load_nets()
    assert source.folder == copy and set(nets) == {"pnet", "rnet", "onet", "classifier"}


def test_an_unknown_weight_set_is_refused():
    with pytest.raises(ValueError, match="unknown detector weights 'night'"):
        hub.net_prefix("rnet", "night")
    assert hub.net_prefix("classifier", "camera") == "" and hub.net_prefix("rnet", "camera") == "camera/"
    assert set(DETECTOR_WEIGHTS) == {"photo", "camera"} and DEFAULT_DETECTOR == "photo"


def test_watch_defaults_to_the_camera_weights_detect_and_batch_to_auto():
    ap = build_parser()
    assert ap.parse_args(["watch", "0"]).detector == "camera"
    assert ap.parse_args(["detect", "x.jpg"]).detector == "auto"
    assert ap.parse_args(["batch", "x", "--out", "o"]).detector == "auto"
    assert ap.parse_args(["batch", "x", "--out", "o", "--detector", "photo"]).detector == "photo"
    assert ap.parse_args(["detect", "x.jpg", "--detector", "camera"]).detector == "camera"
    with pytest.raises(SystemExit):
        ap.parse_args(["watch", "0", "--detector", "night"])


def test_detect_with_the_camera_weights_runs_the_camera_nets(env, capsys):
    """`detect --detector camera` loads the camera set: its O-Net scores the faces, so the
    scores differ from the photo set's on the same photo."""
    from pipeline.cli import main
    from pipeline.settings import SAMPLES_DIR
    photo = str(SAMPLES_DIR / "group_no_masks.jpg")
    runs = {}
    for which in ("photo", "camera"):
        assert main(["detect", photo, "--json", "--device", "cpu", "--detector", which]) == 0
        runs[which] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["faces"]
    assert len(runs["photo"]) == len(runs["camera"]) == 3
    assert sorted(f["score"] for f in runs["photo"]) != sorted(f["score"] for f in runs["camera"])
    assert [f["label"] for f in runs["camera"]] == ["no_mask"] * 3


def _jpeg(rgb, quality: int):
    import io

    from PIL import Image

    from pipeline.media.images import decode_image
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return decode_image(buf.getvalue())


def test_jpeg_blockiness_tells_heavy_compression_from_a_photo():
    import numpy as np

    from pipeline.engine.image_quality import jpeg_blockiness
    from pipeline.engine.config import AUTO_BLOCKINESS
    from pipeline.media.images import read_image
    from pipeline.settings import SAMPLES_DIR
    photo = read_image(SAMPLES_DIR / "group_no_masks.jpg")
    assert jpeg_blockiness(photo) < AUTO_BLOCKINESS < jpeg_blockiness(_jpeg(photo, 20))
    assert jpeg_blockiness(_jpeg(photo, 95)) < AUTO_BLOCKINESS
    assert jpeg_blockiness(np.full((40, 40, 3), 128, np.uint8)) == 1.0       # no steps at all
    assert jpeg_blockiness(np.zeros((5, 5, 3), np.uint8)) == 1.0             # no block edge


def test_noise_sigma_measures_sensor_noise_and_sends_grainy_images_to_the_camera_weights():
    """Immerkaer's estimate gives back the grain added to a flat image and to a photo (whose own
    structure it mostly cancels); "auto" takes the camera weights for a grainy copy of a sharp
    photo that is not blocky."""
    import numpy as np

    from pipeline.engine.config import AUTO_BLOCKINESS, AUTO_NOISE
    from pipeline.engine.image_quality import jpeg_blockiness, noise_sigma
    from pipeline.engine.mask_detector import auto_weights
    from pipeline.media.images import read_image
    from pipeline.settings import SAMPLES_DIR
    rng = np.random.default_rng(0)

    def grainy(img, sigma):
        return np.clip(img.astype(np.float32) + rng.normal(0, sigma, img.shape[:2] + (1,)), 0, 255).astype(np.uint8)
    flat = np.full((120, 160, 3), 110, np.uint8)
    assert noise_sigma(flat) == 0.0 and noise_sigma(np.zeros((2, 9, 3), np.uint8)) == 0.0
    assert abs(noise_sigma(grainy(flat, 5)) - 5) < 0.3 and abs(noise_sigma(grainy(flat, 10)) - 10) < 0.5
    photo = read_image(SAMPLES_DIR / "group_no_masks.jpg")
    noisy = grainy(photo, 10)
    assert noise_sigma(photo) < 2 < AUTO_NOISE < noise_sigma(noisy) < 12
    assert jpeg_blockiness(noisy) < AUTO_BLOCKINESS
    assert auto_weights(photo) == "photo" and auto_weights(noisy) == "camera" == auto_weights(_jpeg(photo, 20))


def test_the_auto_detector_runs_the_camera_nets_on_heavily_compressed_images_only(env):
    """"auto" loads both sets: a heavily compressed photo gets the camera nets' faces (as
    --detector camera), the sharp one the photo nets' (as the default)."""
    from pipeline.engine.mask_detector import MaskDetector
    from pipeline.media.images import read_image
    from pipeline.settings import SAMPLES_DIR
    photo = read_image(SAMPLES_DIR / "group_no_masks.jpg")
    blocky = _jpeg(photo, 20)
    auto = MaskDetector.load(device="cpu", detector="auto")
    only = {w: MaskDetector.load(device="cpu", detector=w) for w in ("photo", "camera")}
    assert auto.detector_for(photo) is auto.detector and auto.detector_for(blocky) is auto.camera_detector
    assert only["photo"].camera_detector is None and only["photo"].detector_for(blocky) is only["photo"].detector

    def scores(engine, img):
        return [round(d.score, 5) for d in engine.detect(img)]
    assert scores(auto, photo) == scores(only["photo"], photo)
    assert scores(auto, blocky) == scores(only["camera"], blocky) != scores(only["photo"], blocky)
    ap = build_parser()
    assert ap.parse_args(["detect", "x.jpg", "--detector", "auto"]).detector == "auto"
    with pytest.raises(SystemExit):
        ap.parse_args(["watch", "0", "--detector", "auto"])      # a camera stream: its weights are fixed


def test_auto_is_scored_with_the_faces_of_the_set_the_engine_picks_per_image(env):
    """training.evaluate_detector scores "auto" from the two sets' runs; each image's faces must be
    those of the detector MaskDetector("auto") runs on it, on a mix of sharp and blocky images."""
    from dataclasses import replace

    from pipeline.engine.config import DetectorConfig
    from pipeline.engine.mask_detector import MaskDetector
    from training import evaluate_detector as ev
    views = ev.view_sets(limit=3)
    records = views["ilc_small"][1][:2] + views["ilc_degraded"][1]
    got = ev.evaluate_auto(LOCAL_WEIGHTS, LOCAL_WEIGHTS / DETECTOR_WEIGHTS["camera"], records, (20.0,),
                           progress=False, cache=False)["min_face_20"]
    auto = MaskDetector.load(device="cpu", detector="auto")
    config = replace(DetectorConfig(), min_face=20.0)
    dets, camera = [], 0
    for r in records:
        img = ev.image_of(r)
        detector = auto.detector_for(img)
        camera += detector is auto.camera_detector
        faces = detector.detect(img, config)
        dets += [(ev.record_key(r), float(s), [float(v) for v in b]) for b, s in zip(faces.boxes, faces.scores)]
    want = ev.face_metrics(dets, *ev.ground_truth(records))
    assert 0 < got["camera_images"] == camera < len(records)
    assert got["detections"] == len(dets) and got["all_faces"] == want["all_faces"]
    assert got["headline"] == want["headline"]


def test_auto_detector_benchmark_gives_the_camera_weights_only_the_compressed_frames(tmp_path):
    from benchmarks.auto_detector import main
    res = main(["--frames", "2", "--repeats", "1", "--out", str(tmp_path / "r.json")])
    assert json.loads((tmp_path / "r.json").read_text())["sets"] == res["sets"]
    sharp, blocky = res["sets"].values()
    assert sharp["camera_frames"] == 0 and blocky["camera_frames"] == blocky["frames"] == 2
    assert sharp["faces"]["auto"] == sharp["faces"]["photo"] and sharp["median_ratio"] > 0
