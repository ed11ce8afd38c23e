"""Command line: python -m pipeline detect|classify ...

  python -m pipeline detect PATH... --json [--device auto|cpu|cuda] [--min-face N] [--annotate DIR]
                                   [--detector photo|camera|auto]
  python -m pipeline classify --boxes FILE --json [--device ...]
  python -m pipeline watch SOURCE [--source-name NAME] [--db URL] [--every N] [--min-face N]
                                  [--device ...] [--detector camera|photo]
                                  (see pipeline/streams/watch.py)

--detector picks the face detector's weights (pipeline.engine.config.DETECTOR_WEIGHTS): "photo"
or "camera", fine-tuned for grainy, blurred frames as well (the default of watch); detect and
batch also take "auto", their default (DEFAULT_MEDIA_DETECTOR, also the Home, Photo and Video
pages'): camera for each heavily compressed or grainy image and photo for the rest
(pipeline.engine.config.AUTO_DETECTOR); a video runs the one set its first frames mostly pick.

One JSON object per line per input, in input order. A bad input gives {"path", "error"} and
the run goes on; the exit code is 0 when every input was fine, 2 when any failed, 1 when the
models could not be loaded, 64 (EX_USAGE) when the arguments are wrong (argparse's errors, or a
--boxes file that cannot be read or is not a regular file).

classify reads its --boxes file a line at a time. A line is refused with an error line (and the
run goes on) when it is longer than MAX_LINE_BYTES, has no "boxes" list or more than
MAX_BOXES_PER_LINE boxes, or any box is degenerate: not 4 finite numbers, a coordinate beyond
MAX_COORD, zero or negative width or height (x2 <= x1 or y2 <= y1), or wholly outside the image.
A line is answered as a whole, so a valid line keeps one output face per box, in order.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from pipeline.engine.config import DEFAULT_DETECTOR, DEFAULT_MEDIA_DETECTOR, DETECTOR_CHOICES
from pipeline.media.images import ImageError, expand_paths, mib, open_regular_file, read_image
from pipeline.records import CLASSES, count_labels

EXIT_OK, EXIT_FATAL, EXIT_SOME_FAILED = 0, 1, 2
EXIT_USAGE = 64
"""Wrong arguments (sysexits.h EX_USAGE); argparse's own 2 would read as "some inputs failed"."""
MAX_BOXES_PER_LINE = 1000
"""Most boxes on one classify line; a longer line gets an error line."""
MAX_LINE_BYTES = 1024 * 1024
"""Longest classify line (1 MiB: 1000 boxes need about 60 KB); it is skipped unread beyond that."""
MAX_COORD = 1e7
"""Largest box coordinate magnitude, in pixels (images are at most 40 MP)."""


class UsageParser(argparse.ArgumentParser):
    """argparse, but usage errors exit EXIT_USAGE (subcommand parsers inherit the class)."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _min_face(text: str) -> float:
    v = float(text)
    if not math.isfinite(v) or v < 6 or v > 2000:
        raise argparse.ArgumentTypeError("min face must be between 6 and 2000 pixels")
    return v


def build_parser() -> argparse.ArgumentParser:
    ap = UsageParser(prog="python -m pipeline", description="MaskWatch: faces and masks.")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("detect", help="find faces and label their masks")
    d.add_argument("paths", nargs="+", metavar="PATH", help="image files (jpg, png, webp, bmp) or folders")
    d.add_argument("--json", action="store_true", help="one JSON object per line per image")
    d.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    d.add_argument("--min-face", type=_min_face, default=None,
                   help="smallest face side to look for, in pixels (default 20)")
    d.add_argument("--annotate", metavar="DIR", help="also write annotated images into DIR")
    d.add_argument("--detector", choices=DETECTOR_CHOICES, default=DEFAULT_MEDIA_DETECTOR,
                   help=f"face detector weights: photo, camera (grainy, blurred frames) or auto (camera for "
                        f"heavily compressed or grainy images, photo for the rest); default {DEFAULT_MEDIA_DETECTOR}")
    c = sub.add_parser("classify", help="label given face boxes")
    c.add_argument("--boxes", required=True, metavar="FILE",
                   help='JSON lines {"path": ..., "boxes": [[x1,y1,x2,y2], ...]}')
    c.add_argument("--json", action="store_true", help="one JSON object per line per input line")
    c.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    from pipeline.streams.watch import add_parser as add_watch_parser
    add_watch_parser(sub, _min_face)
    from pipeline.streams.archives import add_parser as add_batch_parser   # Ray itself loads only in `batch`
    add_batch_parser(sub, _min_face)
    return ap


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _load(device: str, detector: str = DEFAULT_DETECTOR):
    from pipeline.engine.mask_detector import MaskDetector
    return MaskDetector.load(device=device, detector=detector)


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
    engine = _load(args.device, args.detector)
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
            from pipeline.media.draw import annotate
            cv2.imwrite(str(_annotated_name(out_dir, k, path)),
                        cv2.cvtColor(annotate(image, faces, show_landmarks=True), cv2.COLOR_RGB2BGR))
    if not args.json:
        print(f"\n{len(paths)} image(s), {failed} failed. Faces: " +
              ", ".join(f"{c} {totals[c]}" for c in CLASSES))
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _box_text(b) -> str:
    return json.dumps(b)[:80]


def _parse_boxes(raw) -> list[list[float]]:
    """A line's "boxes" -> [[x1, y1, x2, y2], ...]; ValueError naming the first bad box."""
    if not isinstance(raw, list):
        raise ValueError('"boxes" must be a list of [x1, y1, x2, y2]')
    if len(raw) > MAX_BOXES_PER_LINE:
        raise ValueError(f"{len(raw)} boxes on one line; the limit is {MAX_BOXES_PER_LINE} "
                         f"(split the image's boxes over several lines)")
    out = []
    for k, b in enumerate(raw):
        if not (isinstance(b, (list, tuple)) and len(b) == 4 and
                all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in b)):
            raise ValueError(f"boxes[{k}] = {_box_text(b)}: expected [x1, y1, x2, y2] numbers")
        if not all(abs(v) <= MAX_COORD for v in b):  # also false for NaN; no float() of a huge int
            what = "not finite" if any(isinstance(v, float) and not math.isfinite(v) for v in b) else \
                f"beyond {MAX_COORD:,.0f} px"
            raise ValueError(f"boxes[{k}] = {_box_text(b)}: a coordinate is {what}")
        x1, y1, x2, y2 = (float(v) for v in b)
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"boxes[{k}] = {_box_text(b)}: zero or negative width or height "
                             f"(x2 <= x1 or y2 <= y1)")
        out.append([x1, y1, x2, y2])
    return out


def _check_inside(boxes: list[list[float]], width: int, height: int) -> None:
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            raise ValueError(f"boxes[{k}] = [{', '.join(f'{v:g}' for v in (x1, y1, x2, y2))}]: wholly outside the "
                             f"{width}x{height} image")


def _lines(fh):
    """Binary file -> (line number, bytes, or None for a line over MAX_LINE_BYTES), read a line at
    a time; the rest of an overlong line is skipped in bounded reads."""
    n = 0
    while True:
        raw = fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        n += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (more := fh.readline(1 << 16)) and not more.endswith(b"\n"):
                pass
            yield n, None
        else:
            yield n, raw


def _line_object(n: int, raw: bytes | None) -> dict:
    """One classify line -> its object, which has a "path" string; ValueError otherwise."""
    if raw is None:
        raise ValueError(f"line {n}: longer than {mib(MAX_LINE_BYTES)}; skipped")
    try:
        item = json.loads(raw)
    except UnicodeDecodeError:
        raise ValueError(f"line {n}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"line {n}: not valid JSON ({e.msg})") from None
    if not isinstance(item, dict) or not isinstance(item.get("path"), str):
        raise ValueError(f'line {n}: expected an object with a "path" string')
    return item


def cmd_classify(args) -> int:
    try:
        fh = open_regular_file(args.boxes)
    except OSError as e:
        print(f"error: cannot read --boxes file {args.boxes}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    failed = 0
    with fh:
        engine = _load(args.device)
        for n, raw in _lines(fh):
            if raw is not None and not raw.strip():
                continue
            path = None
            try:
                item = _line_object(n, raw)
                path = item["path"]
                if "boxes" not in item:
                    raise ValueError(f'line {n}: no "boxes" list')
                boxes = _parse_boxes(item["boxes"])
                image = read_image(path)
                h, w = image.shape[:2]
                _check_inside(boxes, w, h)
                faces = engine.classify(image, boxes) if boxes else []
            except (ValueError, ImageError) as e:
                failed += 1
                msg = str(e)
            except Exception as e:
                failed += 1
                msg = f"processing failed ({type(e).__name__}: {e})"
            else:
                if args.json:
                    _emit({"path": path, "faces": [f.to_json(with_landmarks=False) for f in faces]})
                else:
                    _table(path, w, h, faces)
                continue
            _emit({"path": path, "error": msg}) if args.json else print(f"{path}  ERROR: {msg}")
    return EXIT_SOME_FAILED if failed else EXIT_OK


def main(argv=None) -> int:
    # Our own loggers (maskwatch.*) at INFO; libraries only from WARNING up (torch, httpx and the
    # hub client otherwise print their INFO lines, even at exit).
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("maskwatch").setLevel(logging.INFO)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "watch":
            from pipeline.streams.watch import cmd_watch
            return cmd_watch(args)
        if args.command == "batch":
            from pipeline.streams.archives import cmd_batch
            return cmd_batch(args)
        return cmd_detect(args) if args.command == "detect" else cmd_classify(args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # model loading, device errors: one clear line, no traceback
        from pipeline.engine.weights import WeightsError
        kind = "weights" if isinstance(e, WeightsError) else type(e).__name__
        print(f"error ({kind}): {e}", file=sys.stderr)
        return EXIT_FATAL
