"""The CLI contract that releases are judged through: JSON schema, error lines, exit codes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.data import DLIB, ROOT
from pipeline.cli import MAX_BOXES_PER_LINE, MAX_LINE_BYTES

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


def test_bad_arguments_exit_64_not_2():
    """2 means "some inputs failed"; wrong arguments are EX_USAGE (64), before any model loads."""
    for args in (("detect", "x.jpg", "--min-face", "0"), ("detect",), (), ("classify", "--json"),
                 ("detect", "x.jpg", "--device", "tpu"), ("frobnicate",)):
        code, lines, err = run(*args)
        assert code == 64 and lines == [] and "error:" in err and "Traceback" not in err, (args, code, err)
    code, _, err = run("classify", "--boxes", "/nonexistent.jsonl", "--json")
    assert code == 64 and "cannot read --boxes file" in err and "maskwatch.hub" not in err, err


def test_help_exits_0():
    p = subprocess.run([sys.executable, "-m", "pipeline", "classify", "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "--boxes FILE" in p.stdout


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_boxes_file_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path, kind):
    """A FIFO with no writer used to block the read forever."""
    path = {"fifo": tmp_path / "boxes.fifo", "folder": tmp_path, "device": Path("/dev/zero")}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    p = subprocess.run([sys.executable, "-m", "pipeline", "classify", "--boxes", str(path), "--json"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 64 and p.stdout == "", (p.returncode, p.stderr)
    (line,) = p.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot read --boxes file {path}: not a regular file"), line


def test_detect_fifo_gives_an_error_line(tmp_path):
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    code, lines, err = run("detect", str(fifo), str(DLIB / "dogs.jpg"), "--json")
    assert code == 2 and lines[0] == {"path": str(fifo), "error": f"{fifo}: not a regular file: a named pipe (FIFO)"}
    assert lines[1]["faces"] == []


def test_classify_refuses_degenerate_boxes_and_overlong_lines_and_goes_on(tmp_path):
    """Each refused line is one error line (its path when known); valid lines around them keep
    one face per box, in order."""
    img = str(DLIB / "2008_002506.jpg")              # 500 x 375
    good = {"path": img, "boxes": [[229, 88, 309, 196], [120, 50, 205, 163]]}
    at_limit = {"path": img, "boxes": [[100, 50, 160, 110]] * MAX_BOXES_PER_LINE}
    cases = [
        ({"path": img}, 'no "boxes" list'),
        ({"path": img, "boxes": [[229, 88, 309, 196], [10, 10, 10, 40]]}, "boxes[1] = [10, 10, 10, 40]: zero or negative width"),
        ({"path": img, "boxes": [[40, 10, 20, 40]]}, "boxes[0] = [40, 10, 20, 40]: zero or negative width"),
        ({"path": img, "boxes": [[0, 0, 50, 50], [500, 0, 600, 50]]}, "boxes[1] = [500, 0, 600, 50]: wholly outside the 500x375 image"),
        ({"path": img, "boxes": [[-90, -90, -10, -10]]}, "wholly outside"),
        ('{"path": "%s", "boxes": [[0, 0, NaN, 10]]}' % img, "not finite"),
        ('{"path": "%s", "boxes": [[0, 0, Infinity, 10]]}' % img, "not finite"),
        ('{"path": "%s", "boxes": [[0, 0, 1%s, 10]]}' % (img, "0" * 400), "beyond 10,000,000 px"),
        ({"path": img, "boxes": [[100, 50, 160, 110]] * 10_000}, "10000 boxes on one line; the limit is 1000"),
        ('{"path": "%s", "boxes": [%s[0, 0, 9, 9]]}' % (img, "[0, 0, 9, 9], " * (MAX_LINE_BYTES // 13)),
         "longer than 1 MiB; skipped"),
    ]
    rows = [good] + [c for c, _ in cases] + [at_limit, good]
    boxes_file = tmp_path / "boxes.jsonl"
    boxes_file.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    code, lines, err = run("classify", "--boxes", str(boxes_file), "--json")
    assert code == 2 and len(lines) == len(rows), err
    assert lines[0] == lines[-1] and [f["box"] for f in lines[0]["faces"]] == good["boxes"]
    for line, (row, reason) in zip(lines[1:], cases):
        assert set(line) == {"path", "error"} and reason in line["error"], (line, reason)
        assert line["path"] == (None if "longer than" in reason else img), line
    limit_line = lines[-2]
    assert len(limit_line["faces"]) == MAX_BOXES_PER_LINE
    assert all(f == limit_line["faces"][0] for f in limit_line["faces"])
    assert "Traceback" not in err


def test_readme_states_the_classify_limits():
    from pipeline.engine.classifier import CHUNK
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Command line"):text.index("## How it works")]
    flat = " ".join(section.split())
    assert f"more than {MAX_BOXES_PER_LINE} boxes" in flat and f"{CHUNK} at a time" in flat
    assert f"longer than {MAX_LINE_BYTES // 2**20} MiB" in flat and "64 (usage error)" in flat
