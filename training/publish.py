"""Publish weights/ to a Hugging Face model repo; print the commit sha to pin.

Uploads, in one commit: every file named in weights/manifest.json (each net's config.json and
model.safetensors), manifest.json itself, a README.md model card (weights/README.md when there
is one, else a generated card), and any other *.json in weights/ or a net folder (metrics).
Nothing else: no checkpoints, no pickles, no stray files.

Refuses to publish when the folder does not match its manifest (pipeline.engine.weights.verify_folder)
or when the manifest lacks one of the nets the app loads. After the commit, the hub's file
listing at the new commit is checked against what was sent.

Then pin the app to it:  MASKWATCH_HUB_REPO=<repo> MASKWATCH_HUB_REVISION=<printed sha>

usage: python -m training.publish --repo OWNER/NAME [--weights weights] [--endpoint URL]
                                  [--token TOKEN] [--no-create] [--private] [--message TEXT]
The token defaults to huggingface_hub's (HF_TOKEN or `hf auth login`); the endpoint to
HF_ENDPOINT, else https://huggingface.co. stdout gets only the sha; the rest goes to stderr.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from pipeline.settings import current as current_settings
from pipeline.engine.weights import MANIFEST_NAME, NETS, WeightsError, load_manifest, release_files, verify_folder
from training.paths import WEIGHTS

DEFAULT_REPO = current_settings().hub_repo
DEFAULT_WEIGHTS = WEIGHTS
DEFAULT_MESSAGE = "Publish MaskWatch weights"
CARD_NAME = "README.md"


class PublishError(RuntimeError):
    """Publishing refused or failed. str(err) says why, in one line."""


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def extra_json_files(weights: Path, manifest: dict[str, str]) -> list[str]:
    """Metrics and other JSON beside the weights: *.json at the top, or in a folder of a net the
    manifest names, other than manifest.json and the manifest's own files."""
    nets = {rel.split("/")[0] for rel in manifest}
    out = []
    for p in sorted(list(weights.glob("*.json")) + list(weights.glob("*/*.json"))):
        rel = p.relative_to(weights).as_posix()
        top = "/" not in rel
        if p.is_file() and rel != MANIFEST_NAME and rel not in manifest and (top or rel.split("/")[0] in nets):
            out.append(rel)
    return out


def model_card(weights: Path, manifest: dict[str, str], repo_id: str, extras: list[str]) -> str:
    """A short model card: what the files are, their checksums, how to pin them."""
    rows = []
    for rel in sorted(manifest):
        rows.append(f"| `{rel}` | {(weights / rel).stat().st_size:,} | `{manifest[rel]}` |")
    nets = sorted({rel.split("/")[0] for rel in manifest})
    lines = [
        "---",
        "library_name: pytorch",
        "pipeline_tag: object-detection",
        "tags:",
        "- face-detection",
        "- face-mask-detection",
        "- mtcnn",
        "- safetensors",
        "---",
        "",
        "# MaskWatch weights",
        "",
        "Weights for MaskWatch, a two-stage face-mask detector: MTCNN (P-Net, R-Net, O-Net; the",
        "original MTCNN weights converted to safetensors, via facenet-pytorch, MIT) finds faces, and a",
        "small CNN labels each face's mask.",
        "",
        f"Nets: {', '.join(nets)}. Each folder holds `config.json` and `model.safetensors` (no pickle).",
        "",
        "## Use",
        "",
        "```bash",
        f"export MASKWATCH_HUB_REPO={repo_id}",
        "export MASKWATCH_HUB_REVISION=<commit sha printed by training.publish>",
        "```",
        "",
        "`pipeline.engine.weights` downloads these files at that commit and refuses any file whose sha256 differs",
        "from the app's committed `weights/manifest.json`; it falls back to the app's own copy then.",
        "",
        "## Files",
        "",
        "| file | bytes | sha256 |",
        "|---|---:|---|",
        *rows,
    ]
    if extras:
        lines += ["", "## Metrics and other records", "", *[f"- `{rel}`" for rel in extras]]
    return "\n".join(lines) + "\n"


def collect(weights: Path, repo_id: str, nets=tuple(NETS)) -> dict[str, bytes]:
    """{path in repo: bytes} to upload, after checking the folder against its manifest.
    Raises PublishError when anything does not match."""
    weights = Path(weights)
    if not weights.is_dir():
        raise PublishError(f"weights folder {weights} does not exist")
    try:
        manifest = load_manifest(weights / MANIFEST_NAME)
        missing = [rel for rel in release_files(nets) if rel not in manifest]
        if missing:
            raise WeightsError(f"the manifest lacks {', '.join(missing)}: add the net, then run "
                               f"python -m training.manifest --weights {weights}")
        verify_folder(weights, manifest, sorted(manifest))
    except WeightsError as e:
        raise PublishError(f"refusing to publish {weights}: {e}") from None
    files = {rel: (weights / rel).read_bytes() for rel in sorted(manifest)}
    # the bytes read now are the bytes sent: check them again (a file rewritten meanwhile)
    for rel, data in files.items():
        if _sha256(data) != manifest[rel]:
            raise PublishError(f"refusing to publish {weights}: {rel} changed while reading it")
    files[MANIFEST_NAME] = (weights / MANIFEST_NAME).read_bytes()
    extras = extra_json_files(weights, manifest)
    for rel in extras:
        files[rel] = (weights / rel).read_bytes()
    card = weights / CARD_NAME
    files[CARD_NAME] = card.read_bytes() if card.is_file() else \
        model_card(weights, manifest, repo_id, extras).encode()
    return files


def _check_remote(api, repo_id: str, sha: str, files: dict[str, bytes]) -> None:
    """The hub's listing at `sha` must hold every file sent, with the same size and hash."""
    from huggingface_hub.hf_api import RepoFile

    remote = {f.path: f for f in api.list_repo_tree(repo_id, revision=sha, recursive=True)
              if isinstance(f, RepoFile)}
    for rel, data in files.items():
        f = remote.get(rel)
        if f is None:
            raise PublishError(f"{rel} is missing from {repo_id}@{sha} after the commit")
        same = (f.lfs.sha256 == _sha256(data)) if f.lfs else (f.blob_id == _git_oid(data))
        if f.size != len(data) or not same:
            raise PublishError(f"{rel} on {repo_id}@{sha} differs from the file sent")


def publish(weights_dir: Path | str = DEFAULT_WEIGHTS, repo_id: str | None = DEFAULT_REPO,
            token: str | bool | None = None, endpoint: str | None = None, create: bool = True,
            message: str = DEFAULT_MESSAGE, private: bool | None = None, nets=tuple(NETS),
            log=None) -> str:
    """Push the verified weights folder to model repo `repo_id` in one commit; return the
    40-hex commit sha to pin as MASKWATCH_HUB_REVISION. When nothing changed, no commit is
    made and the current head's sha is returned."""
    say = log or (lambda msg: print(msg, file=sys.stderr))
    if not repo_id:
        raise PublishError("no repo given (--repo OWNER/NAME or MASKWATCH_HUB_REPO)")
    files = collect(Path(weights_dir), repo_id, nets)  # refuse before any network call

    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=endpoint, token=token)
    if create:
        api.create_repo(repo_id, repo_type="model", exist_ok=True, private=private)
    ops = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=data) for rel, data in files.items()]
    info = api.create_commit(repo_id, ops, commit_message=message, repo_type="model")
    sha = info.oid
    if not sha or len(sha) != 40:
        raise PublishError(f"the hub returned no commit sha (got {sha!r})")
    _check_remote(api, repo_id, sha, files)
    say(f"published {len(files)} files from {weights_dir} to {api.endpoint}/{repo_id} @ {sha}")
    say(f"pin it: MASKWATCH_HUB_REPO={repo_id} MASKWATCH_HUB_REVISION={sha}")
    return sha


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.publish", description=__doc__.splitlines()[0])
    ap.add_argument("--repo", default=DEFAULT_REPO, required=DEFAULT_REPO is None,
                    help="model repo id, OWNER/NAME (default: MASKWATCH_HUB_REPO)")
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="weights folder (default weights/)")
    ap.add_argument("--endpoint", default=None, help="hub URL (default: HF_ENDPOINT or https://huggingface.co)")
    ap.add_argument("--token", default=None, help="hub token (default: huggingface_hub's saved token / HF_TOKEN)")
    ap.add_argument("--no-create", dest="create", action="store_false", help="do not create the repo if missing")
    ap.add_argument("--private", action="store_true", default=None, help="create the repo private")
    ap.add_argument("--message", default=DEFAULT_MESSAGE, help="commit message")
    a = ap.parse_args(argv)
    try:
        sha = publish(a.weights, a.repo, token=a.token, endpoint=a.endpoint, create=a.create,
                      message=a.message, private=a.private)
    except PublishError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # hub errors: one line, no traceback
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"error: publishing to {a.repo} failed ({type(e).__name__}: {first})", file=sys.stderr)
        return 1
    print(sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
