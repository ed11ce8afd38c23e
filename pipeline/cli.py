"""Command line: python -m pipeline detect|classify ...

  python -m pipeline detect PATH... --json [--device auto|cpu|cuda] [--min-face N] [--annotate DIR]
  python -m pipeline classify --boxes FILE --json [--device ...]
  python -m pipeline watch SOURCE [--source-name NAME] [--db URL] [--every N] [--min-face N]
                                  [--device ...]   (see pipeline/watch.py)

One JSON object per line per input, in input order. A bad input gives {"path", "error"} and
the run goes on; the exit code is 0 when every input was fine, 2 when any failed, 1 when the
models could not be loaded or the arguments are wrong.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from .images import ImageError, expand_paths, read_image
from .types import CLASSES, count_labels

EXIT_OK, EXIT_FATAL, EXIT_SOME_FAILED = 0, 1, 2


def _min_face(text: str) -> float:
    v = float(text)
    if not math.isfinite(v) or v < 6 or v > 2000:
        raise argparse.ArgumentTypeError("min face must be between 6 and 2000 pixels")
    return v


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pipeline", description="MaskWatch: faces and masks.")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("detect", help="find faces and label their masks")
    d.add_argument("paths", nargs="+", metavar="PATH", help="image files (jpg, png, webp, bmp) or folders")
    d.add_argument("--json", action="store_true", help="one JSON object per line per image")
    d.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    d.add_argument("--min-face", type=_min_face, default=None,
                   help="smallest face side to look for, in pixels (default 20)")
    d.add_argument("--annotate", metavar="DIR", help="also write annotated images into DIR")
    c = sub.add_parser("classify", help="label given face boxes")
    c.add_argument("--boxes", required=True, metavar="FILE",
                   help='JSON lines {"path": ..., "boxes": [[x1,y1,x2,y2], ...]}')
    c.add_argument("--json", action="store_true", help="one JSON object per line per input line")
    c.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    from .watch import add_parser as add_watch_parser
    add_watch_parser(sub, _min_face)
    from .scale_batch import add_parser as add_batch_parser   # Ray itself loads only in `batch`
    add_batch_parser(sub, _min_face)
    return ap


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _load(device: str):
    from .engine import MaskDetector
    return MaskDetector.load(device=device)


def _table(path: str, w: int, h: int, faces) -> None:
    counts = count_labels(faces)
    print(f"{path}  ({w}x{h})  {len(faces)} face(s): " + ", ".join(f"{c} {counts[c]}" for c in CLASSES))
    for k, f in enumerate(faces):
        b = ", ".join(f"{v:.0f}" for v in f.box)
        print(f"  {k + 1:>3}  [{b}]  face {f.score:.2f}  {f.label or '-':<9} {f.confidence:.0%}")


def _annotated_name(out_dir: Path, index: int, path: str) -> Path:
    return out_dir / f"{index:04d}_{Path(path).stem}.jpg"


def cmd_detect(args) -> int:
    paths = expand_paths(args.paths)
    engine = _load(args.device)
    config = engine.with_config(min_face=args.min_face) if args.min_face else None
    out_dir = Path(args.annotate) if args.annotate else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    totals = {c: 0 for c in CLASSES}
    for k, path in enumerate(paths):
        try:
            image = read_image(path)
            faces = engine.detect(image, config)
        except ImageError as e:
            failed += 1
            _emit({"path": path, "error": str(e)}) if args.json else print(f"{path}  ERROR: {e}")
            continue
        except Exception as e:  # never a traceback for one bad input
            failed += 1
            msg = f"processing failed ({type(e).__name__}: {e})"
            _emit({"path": path, "error": msg}) if args.json else print(f"{path}  ERROR: {msg}")
            continue
        h, w = image.shape[:2]
        if args.json:
            _emit({"path": path, "width": w, "height": h, "faces": [f.to_json() for f in faces]})
        else:
            _table(path, w, h, faces)
        for c, n in count_labels(faces).items():
            totals[c] += n
        if out_dir:
            import cv2
            from .draw import annotate
            cv2.imwrite(str(_annotated_name(out_dir, k, path)),
                        cv2.cvtColor(annotate(image, faces, show_landmarks=True), cv2.COLOR_RGB2BGR))
    if not args.json:
        print(f"\n{len(paths)} image(s), {failed} failed. Faces: " +
              ", ".join(f"{c} {totals[c]}" for c in CLASSES))
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _parse_boxes(raw) -> list[list[float]]:
    if not isinstance(raw, list):
        raise ValueError('"boxes" must be a list of [x1, y1, x2, y2]')
    out = []
    for b in raw:
        if not (isinstance(b, (list, tuple)) and len(b) == 4 and
                all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in b)):
            raise ValueError(f"bad box {json.dumps(b)[:60]}: expected [x1, y1, x2, y2] numbers")
        out.append([float(v) for v in b])
    return out


def cmd_classify(args) -> int:
    try:
        lines = Path(args.boxes).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        print(f"error: cannot read --boxes file {args.boxes}: {e}", file=sys.stderr)
        return EXIT_FATAL
    engine = _load(args.device)
    failed = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        path = None
        try:
            item = json.loads(line)
            if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                raise ValueError(f'line {n}: expected an object with a "path" string')
            path = item["path"]
            boxes = _parse_boxes(item.get("boxes", []))
            image = read_image(path)
            faces = engine.classify(image, boxes) if boxes else []
        except (ValueError, ImageError) as e:  # JSONDecodeError is a ValueError
            failed += 1
            msg = str(e) if not isinstance(e, json.JSONDecodeError) else f"line {n}: not valid JSON ({e.msg})"
            _emit({"path": path, "error": msg}) if args.json else print(f"{path}  ERROR: {msg}")
            continue
        except Exception as e:
            failed += 1
            msg = f"processing failed ({type(e).__name__}: {e})"
            _emit({"path": path, "error": msg}) if args.json else print(f"{path}  ERROR: {msg}")
            continue
        if args.json:
            _emit({"path": path, "faces": [f.to_json(with_landmarks=False) for f in faces]})
        else:
            h, w = image.shape[:2]
            _table(path, w, h, faces)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "httpx2", "httpcore", "huggingface_hub", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "watch":
            from .watch import cmd_watch
            return cmd_watch(args)
        if args.command == "batch":
            from .scale_batch import cmd_batch
            return cmd_batch(args)
        return cmd_detect(args) if args.command == "detect" else cmd_classify(args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # model loading, device errors: one clear line, no traceback
        from .hub import WeightsError
        kind = "weights" if isinstance(e, WeightsError) else type(e).__name__
        print(f"error ({kind}): {e}", file=sys.stderr)
        return EXIT_FATAL
