"""The CLI contract that releases are judged through: JSON schema, error lines, exit codes."""
import json
import subprocess
import sys

import pytest

from tests.support.data import DLIB, ROOT

LABELS = {"mask", "no_mask", "incorrect"}


def run(*args, stdin=None):
    p = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    return p.returncode, lines, p.stderr


def check_face(f, with_landmarks=True):
    assert len(f["box"]) == 4 and all(isinstance(v, (int, float)) for v in f["box"])
    assert f["box"][0] < f["box"][2] and f["box"][1] < f["box"][3]
    assert f["label"] in LABELS
    assert set(f["probs"]) == LABELS and abs(sum(f["probs"].values()) - 1) < 1e-3
    assert f["label"] == max(f["probs"], key=f["probs"].get)
    if with_landmarks:
        assert 0 <= f["score"] <= 1
        assert len(f["landmarks"]) == 5 and all(len(p) == 2 for p in f["landmarks"])


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    good = (DLIB / "2008_002506.jpg").read_bytes()
    (d / "empty.jpg").write_bytes(b"")
    (d / "truncated.jpg").write_bytes(good[:300])
    (d / "text.png").write_text("hello")
    return d


def test_detect_json_in_order_with_errors(bad_files):
    paths = [str(DLIB / "2008_002506.jpg"), str(bad_files / "empty.jpg"), "missing.jpg",
             str(bad_files / "truncated.jpg"), str(bad_files / "text.png"), str(DLIB / "dogs.jpg")]
    code, lines, err = run("detect", *paths, "--json")
    assert code == 2, err
    assert [l["path"] for l in lines] == paths
    first = lines[0]
    assert (first["width"], first["height"]) == (500, 375) and len(first["faces"]) == 3
    for f in first["faces"]:
        check_face(f)
    for l in lines[1:5]:
        assert set(l) == {"path", "error"} and l["error"]
    assert "empty" in lines[1]["error"] and "no such file" in lines[2]["error"]
    assert lines[5]["faces"] == []
    assert "Traceback" not in err


def test_detect_folder_exit_zero_and_min_face(tmp_path):
    code, lines, _ = run("detect", str(DLIB), "--json", "--min-face", "40", "--device", "cpu",
                         "--annotate", str(tmp_path))
    assert code == 0
    n_images = len(list(DLIB.glob("*.jpg")))
    assert len(lines) == n_images and all("faces" in l for l in lines)
    assert len(list(tmp_path.glob("*.jpg"))) == n_images
    # a larger min face finds no face smaller than it (with regression slack)
    for l in lines:
        for f in l["faces"]:
            assert f["box"][2] - f["box"][0] >= 25


def test_detect_readable_table():
    p = subprocess.run([sys.executable, "-m", "pipeline", "detect", str(DLIB / "2008_002506.jpg")],
                       cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0 and "3 face(s)" in p.stdout and "Faces:" in p.stdout


def test_classify_one_face_per_box_in_order(tmp_path):
    img = str(DLIB / "2008_002506.jpg")
    boxes_file = tmp_path / "boxes.jsonl"
    rows = [
        {"path": img, "boxes": [[229, 88, 309, 196], [120, 50, 205, 163], [0, 0, 40, 40]]},
        {"path": img, "boxes": []},
        "not json",
        {"path": "missing.jpg", "boxes": [[0, 0, 10, 10]]},
        {"path": img, "boxes": [[1, 2, 3]]},
    ]
    boxes_file.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    code, lines, err = run("classify", "--boxes", str(boxes_file), "--json")
    assert code == 2 and len(lines) == 5, err
    assert [f["box"] for f in lines[0]["faces"]] == rows[0]["boxes"]
    for f in lines[0]["faces"]:
        check_face(f, with_landmarks=False)
    assert lines[1] == {"path": img, "faces": []}
    assert "error" in lines[2] and "error" in lines[3] and "error" in lines[4]
    assert "Traceback" not in err


def test_bad_arguments_exit_nonzero():
    assert run("detect", "x.jpg", "--min-face", "0")[0] != 0
    code, _, err = run("classify", "--boxes", "/nonexistent.jsonl", "--json")
    assert code == 1 and "cannot read" in err
