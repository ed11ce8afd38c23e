"""A small stand-in for the Hugging Face Hub, for tests: stdlib only, 127.0.0.1, random port.

It speaks enough of the Hub's HTTP API for the real huggingface_hub client (2.4.0) to
download (hf_hub_download, snapshot_download, repo_info, list_repo_tree) and to publish
(create_repo, create_commit, upload_folder) model repos:

  GET  /api/models/{repo}[/revision/{rev}]            -> {"id", "sha", "siblings", ...}
  GET  /api/models/{repo}/tree/{rev}[/{path}]          -> [{"type", "path", "size", "oid"[, "lfs"]}]
  POST /api/models/{repo}/paths-info/{rev}             -> same entries, for the given paths
  HEAD|GET /{repo}/resolve/{rev}/{path}                -> the bytes, X-Repo-Commit, ETag, Content-Length
  POST /api/repos/create                               -> {"url", "name"}; 409 when it exists
  POST /api/validate-yaml                              -> {"errors": [], "warnings": []}
  POST /api/models/{repo}/preupload/{rev}              -> every file "regular" (no LFS/Xet upload)
  POST /api/models/{repo}/commit/{rev}                 -> NDJSON header/file/deletedFile lines

Errors carry X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound), as the Hub's do,
so the client raises its usual exceptions. Commits get fixed 40-hex shas; branches map to
them. Every request goes into `server.log` (method, path, status, time), so a test can assert
what was fetched, and when.

For failure tests: `corrupt(repo, path)` serves altered bytes for a file while the headers
still advertise the committed file (size and ETag), as a tampered mirror or a broken
transfer would.

usage:
    with HubServer() as hub:
        sha = hub.commit_folder("org/name", weights_dir)       # branch "main" -> sha
        env = {"HF_ENDPOINT": hub.url}
        ...
        hub.downloads()   # [(repo, rev, path), ...] of GET .../resolve/...
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import os
import shutil
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack")
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"

_REPO = r"(?P<repo>[^/]+/[^/]+|[^/]+)"
API_RE = re.compile(rf"^/api/models/{_REPO}(?:/(?P<op>revision|tree|preupload|commit|paths-info)(?:/(?P<rest>.*))?)?$")
RESOLVE_RE = re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


def git_oid(data: bytes) -> str:
    """git's blob sha1, the Hub's oid for a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_lfs(path: str) -> bool:
    return path.endswith(LFS_SUFFIXES)


def etag_of(path: str, data: bytes) -> str:
    """The Hub's ETag: sha256 of the content for LFS files, the git oid for the others."""
    return sha256(data) if is_lfs(path) else git_oid(data)


def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening on it (right after this call)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_folder(folder: Path) -> dict[str, bytes]:
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@dataclass
class Commit:
    sha: str
    files: dict[str, bytes]
    parent: str | None
    message: str
    date: float


@dataclass
class Repo:
    repo_id: str
    commits: dict[str, Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)

    def resolve(self, rev: str) -> Commit | None:
        if rev in self.refs:
            return self.commits[self.refs[rev]]
        return self.commits.get(rev) if SHA_RE.match(rev) else None


@dataclass
class Request:
    t: float
    method: str
    path: str
    status: int
    repo: str | None = None
    rev: str | None = None
    file: str | None = None
    authorization: str | None = None


class HubError(Exception):
    def __init__(self, status: int, code: str | None, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class HubServer:
    """The fake hub. Thread-safe; start()/stop() or use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self.repos: dict[str, Repo] = {}
        self.log: list[Request] = []
        self.corrupted: dict[tuple[str, str], bytes] = {}
        self._lock = threading.RLock()
        self._counter = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # ---- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "HubServer":
        server = self

        class Handler(_Handler):
            hub = server

        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"hub-server-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            with self._lock:  # also drop kept-alive connections: a stopped hub answers nothing
                for conn in list(self._connections):
                    try:
                        conn.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            self._thread.join(5)
            self._httpd = self._thread = None

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- content ---------------------------------------------------------------------------
    def create_repo(self, repo_id: str, exist_ok: bool = True) -> Repo:
        """A repo with one commit holding .gitattributes on "main", as the Hub makes them."""
        with self._lock:
            if repo_id in self.repos:
                if not exist_ok:
                    raise HubError(409, None, "You already created this model repo")
                return self.repos[repo_id]
            repo = self.repos[repo_id] = Repo(repo_id)
            self._new_commit(repo, {".gitattributes": GITATTRIBUTES}, None, "initial commit", "main")
            return repo

    def commit(self, repo_id: str, files: dict[str, bytes], branch: str = "main",
               message: str = "update", replace: bool = False, delete: tuple[str, ...] = ()) -> str:
        """Add (or, with replace=True, set exactly) files on a branch; create the repo if needed.
        Returns the new commit's 40-hex sha."""
        with self._lock:
            repo = self.create_repo(repo_id)
            parent = repo.refs.get(branch) or repo.refs["main"]
            base = {} if replace else dict(repo.commits[parent].files)
            base.update(files)
            for p in delete:
                base.pop(p, None)
            return self._new_commit(repo, base, parent, message, branch).sha

    def commit_folder(self, repo_id: str, folder: Path, branch: str = "main", message: str = "upload folder",
                      replace: bool = False) -> str:
        return self.commit(repo_id, read_folder(folder), branch, message, replace)

    def set_branch(self, repo_id: str, branch: str, sha: str) -> None:
        with self._lock:
            repo = self.repos[repo_id]
            if sha not in repo.commits:
                raise KeyError(sha)
            repo.refs[branch] = sha

    def corrupt(self, repo_id: str, path: str, data: bytes | None = None) -> None:
        """From now on serve `data` (default: the committed bytes with a few bytes flipped, same
        length) for `path` at every revision, with the committed file's headers."""
        with self._lock:
            if data is None:
                repo = self.repos[repo_id]
                original = next(c.files[path] for c in repo.commits.values() if path in c.files)
                b = bytearray(original)
                for k in range(min(len(b), 16)):
                    b[len(b) // 2 + k - 8] ^= 0xFF
                data = bytes(b)
            self.corrupted[(repo_id, path)] = data

    def files(self, repo_id: str, rev: str = "main") -> dict[str, bytes]:
        with self._lock:
            return dict(self.repos[repo_id].resolve(rev).files)

    def _new_commit(self, repo: Repo, files: dict[str, bytes], parent: str | None, message: str,
                    branch: str) -> Commit:
        self._counter += 1
        digest = hashlib.sha1(json.dumps({
            "repo": repo.repo_id, "parent": parent, "message": message, "n": self._counter,
            "files": {p: git_oid(d) for p, d in sorted(files.items())}}).encode()).hexdigest()
        c = repo.commits[digest] = Commit(digest, dict(files), parent, message, time.time())
        repo.refs[branch] = digest
        return c

    # ---- request log -----------------------------------------------------------------------
    def requests(self, since: float = 0.0, until: float = float("inf")) -> list[Request]:
        with self._lock:
            return [r for r in self.log if since <= r.t <= until]

    def downloads(self, since: float = 0.0, until: float = float("inf")) -> list[tuple[str, str, str]]:
        """(repo, rev, path) of every successful GET of a file's bytes."""
        return [(r.repo, r.rev, r.file) for r in self.requests(since, until)
                if r.method == "GET" and r.file is not None and r.status in (200, 206)]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    def _record(self, req: Request) -> None:
        with self._lock:
            self.log.append(req)

    # ---- API -------------------------------------------------------------------------------
    def _repo(self, repo_id: str) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None:
            raise HubError(404, "RepoNotFound", f"Repository {repo_id} not found")
        return repo

    def _commit_at(self, repo: Repo, rev: str) -> Commit:
        c = repo.resolve(rev)
        if c is None:
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return c

    def _entry(self, path: str, data: bytes) -> dict:
        e = {"type": "file", "path": path, "size": len(data), "oid": git_oid(data)}
        if is_lfs(path):
            e["lfs"] = {"oid": sha256(data), "size": len(data), "pointerSize": 134}
        return e

    def _info(self, repo: Repo, c: Commit) -> dict:
        return {"id": repo.repo_id, "modelId": repo.repo_id, "sha": c.sha, "private": False,
                "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": [],
                "lastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(c.date)),
                "siblings": [{"rfilename": p} for p in sorted(c.files)]}

    def _tree(self, c: Commit, prefix: str, recursive: bool) -> list[dict]:
        prefix = prefix.strip("/")
        under = {p: d for p, d in c.files.items() if not prefix or p.startswith(prefix + "/")}
        if prefix and not under:
            if prefix in c.files:
                return [self._entry(prefix, c.files[prefix])]
            raise HubError(404, "EntryNotFound", f"{prefix} does not exist on {c.sha}")
        out, dirs = [], set()
        for p in sorted(under):
            rel = p[len(prefix) + 1:] if prefix else p
            parts = rel.split("/")
            if len(parts) > 1:
                base = (prefix + "/" if prefix else "")
                for k in range(1, len(parts) if recursive else 2):
                    dirs.add(base + "/".join(parts[:k]))
                if not recursive:
                    continue
            out.append(self._entry(p, under[p]))
        out += [{"type": "directory", "path": d, "size": 0, "oid": hashlib.sha1(d.encode()).hexdigest()}
                for d in sorted(dirs)]
        return out

    def handle_api(self, method: str, repo_id: str, op: str | None, rest: str, query: dict,
                   body: bytes, content_type: str) -> tuple[int, object]:
        with self._lock:
            repo = self._repo(repo_id)
            if op is None or op == "revision":
                if method != "GET":
                    raise HubError(405, None, "method not allowed")
                return 200, self._info(repo, self._commit_at(repo, unquote(rest) if op else "main"))
            rev, _, sub = (rest or "").partition("/")
            rev = unquote(rev)
            if op == "tree":
                c = self._commit_at(repo, rev)
                return 200, self._tree(c, unquote(sub), query.get("recursive", ["false"])[0] in ("true", "1", "True"))
            if op == "paths-info":
                c = self._commit_at(repo, rev)
                paths = parse_qs(body.decode()).get("paths", []) if "form" in content_type else \
                    json.loads(body or b"{}").get("paths", [])
                return 200, [self._entry(p, c.files[p]) for p in paths if p in c.files]
            if op == "preupload":
                c = self._commit_at(repo, rev)
                req = json.loads(body)
                return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                        "oid": git_oid(c.files[f["path"]]) if f["path"] in c.files else None}
                                       for f in req["files"]]}
            if op == "commit":
                return 200, self._apply_commit(repo, rev, body)
            raise HubError(404, None, f"unknown operation {op}")

    def _apply_commit(self, repo: Repo, rev: str, body: bytes) -> dict:
        if rev not in repo.refs:
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {rev} (commit to a branch)")
        head = repo.commits[repo.refs[rev]]
        files = dict(head.files)
        header = None
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
                parent = value.get("parentCommit")
                if parent and not head.sha.startswith(parent):
                    raise HubError(412, None, f"parent commit {parent} is not the head of {rev} ({head.sha})")
            elif key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, None, f"unsupported encoding {value.get('encoding')}")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key in ("deletedFile", "deletedFolder"):
                p = value["path"].rstrip("/")
                for k in [k for k in files if k == p or (key == "deletedFolder" and k.startswith(p + "/"))]:
                    del files[k]
            else:  # lfsFile: this server never asks for LFS uploads
                raise HubError(400, None, f"unsupported commit operation {key}")
        if header is None:
            raise HubError(400, None, "the commit has no header line")
        c = self._new_commit(repo, files, head.sha, header.get("summary") or "commit", rev)
        return {"commitUrl": f"{self.url}/{repo.repo_id}/commit/{c.sha}", "commitOid": c.sha,
                "pullRequestUrl": None, "success": True}

    def handle_create(self, body: bytes) -> tuple[int, object]:
        req = json.loads(body or b"{}")
        if req.get("type") not in (None, "model"):
            raise HubError(400, None, "this test hub only holds model repos")
        name, org = req.get("name"), req.get("organization")
        if not name:
            raise HubError(400, None, "no repo name")
        repo_id = f"{org}/{name}" if org else name
        with self._lock:
            if repo_id in self.repos:
                raise HubError(409, None, "You already created this model repo",
                               {"_json": {"error": "You already created this model repo",
                                          "url": f"{self.url}/{repo_id}"}})
            self.create_repo(repo_id)
        return 200, {"url": f"{self.url}/{repo_id}", "name": repo_id, "id": repo_id}

    def resolve_file(self, repo_id: str, rev: str, path: str) -> tuple[Commit, bytes, bytes]:
        """-> (commit, committed bytes, bytes to serve)."""
        with self._lock:
            repo = self._repo(repo_id)
            c = self._commit_at(repo, rev)
            if path not in c.files:
                raise HubError(404, "EntryNotFound", f"{path} does not exist on {rev}",
                               {"X-Repo-Commit": c.sha})
            data = c.files[path]
            return c, data, self.corrupted.get((repo_id, path), data)


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"

    def log_message(self, *args) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.hub._lock:
            self.hub._connections.add(self.connection)

    def finish(self) -> None:
        with self.hub._lock:
            self.hub._connections.discard(self.connection)
        super().finish()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, payload=None, headers: dict | None = None, raw: bytes | None = None,
              head: bool = False) -> None:
        body = raw if raw is not None else (json.dumps(payload).encode() if payload is not None else b"")
        self.send_response(status)
        hdrs = {"Content-Type": "application/json" if raw is None else "application/octet-stream",
                "Content-Length": str(len(body))}
        hdrs.update(headers or {})
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.end_headers()
        if not head and self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, e: HubError, rec: Request) -> None:
        rec.status = e.status
        headers = {k: v for k, v in e.headers.items() if not k.startswith("_")}
        headers["X-Error-Message"] = e.message
        if e.code:
            headers["X-Error-Code"] = e.code
        self._send(e.status, e.headers.get("_json") or {"error": e.message}, headers)

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query)
        body = self._body() if self.command in ("POST", "PUT") else b""
        rec = Request(time.time(), self.command, self.path, 0,
                      authorization=self.headers.get("Authorization"))
        try:
            m = RESOLVE_RE.match(path)
            if m and self.command in ("GET", "HEAD"):
                rec.repo, rec.rev, rec.file = unquote(m["repo"]), unquote(m["rev"]), unquote(m["path"])
                self._serve_file(rec)
                return
            m = API_RE.match(path)
            if m:
                rec.repo, rec.rev = unquote(m["repo"]), None
                status, payload = self.hub.handle_api(self.command, rec.repo, m["op"], m["rest"] or "", query, body,
                                                      self.headers.get("Content-Type", ""))
            elif path == "/api/repos/create" and self.command == "POST":
                status, payload = self.hub.handle_create(body)
            elif path == "/api/validate-yaml" and self.command == "POST":
                status, payload = 200, {"errors": [], "warnings": []}
            elif path.startswith("/_test/refs/") and self.command == "POST":  # test control: move a branch
                req = json.loads(body)
                self.hub.set_branch(unquote(path[len("/_test/refs/"):]), req["branch"], req["sha"])
                status, payload = 200, {"ok": True}
            elif path == "/api/whoami-v2":
                status, payload = 200, {"type": "user", "name": "tester", "auth": {}}
            else:
                raise HubError(404, None, f"no route for {self.command} {path}")
            rec.status = status
            self._send(status, payload)
        except HubError as e:
            self._error(e, rec)
        except Exception as e:  # a bug here must show up as a 500, not a hang
            rec.status = 500
            self._send(500, {"error": f"{type(e).__name__}: {e}"})
        finally:
            self.hub._record(rec)

    def _serve_file(self, rec: Request) -> None:
        try:
            c, committed, served = self.hub.resolve_file(rec.repo, rec.rev, rec.file)
        except HubError as e:
            self._error(e, rec)
            return
        headers = {"X-Repo-Commit": c.sha, "ETag": f'"{etag_of(rec.file, committed)}"',
                   "Accept-Ranges": "bytes"}
        if is_lfs(rec.file):
            headers["X-Linked-Size"] = str(len(committed))
        status, body = 200, served
        rng = self.headers.get("Range")
        m = re.match(r"bytes=(\d+)-(\d*)$", rng or "")
        if m and self.command == "GET":
            start = int(m[1])
            end = int(m[2]) if m[2] else len(served) - 1
            status, body = 206, served[start:end + 1]
            headers["Content-Range"] = f"bytes {start}-{start + len(body) - 1}/{len(served)}"
        rec.status = status
        self._send(status, headers=headers, raw=body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch


def resolve_url(base: str, repo_id: str, rev: str, path: str) -> str:
    return f"{base}/{repo_id}/resolve/{quote(rev, safe='')}/{quote(path)}"


# ---- helpers for MaskWatch's hub tests ---------------------------------------------------------
from training.paths import ROOT  # noqa: E402
PYTHON = sys.executable


def make_weights(dest: Path, seed: int = 0, src: Path = ROOT / "weights") -> Path:
    """A complete, small weights folder: the committed P/R/O-Nets of both detector weight sets
    plus a tiny random mask classifier (seeded), and its manifest.json. Independent of
    weights/classifier."""
    import torch

    from pipeline.engine.config import ClassifierConfig
    from pipeline.engine.nets import MaskClassifier
    from pipeline.engine.weights import save_net
    from training.manifest import write_manifest

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("pnet", "rnet", "onet"):
        shutil.copytree(src / name, dest / name, dirs_exist_ok=True)
        shutil.copytree(src / "camera" / name, dest / "camera" / name, dirs_exist_ok=True)
    torch.manual_seed(seed)
    net = MaskClassifier(ClassifierConfig(channels=(4, 8), hidden=8))
    net.reset_parameters()
    save_net(net, dest / "classifier", source="a tiny random classifier for the hub tests")
    write_manifest(dest)
    return dest


def flip_bytes(path: Path, n: int = 16) -> None:
    """Corrupt a file in place, keeping its size."""
    b = bytearray(Path(path).read_bytes())
    for k in range(min(n, len(b))):
        b[len(b) // 2 + k - n // 2] ^= 0xFF
    Path(path).write_bytes(bytes(b))


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any HF_*/MASKWATCH_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_", "MASKWATCH_")) and k != "TRANSFORMERS_OFFLINE"}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
               HF_HUB_DISABLE_IMPLICIT_TOKEN="1", PYTHONUNBUFFERED="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


# Runs in a fresh interpreter, so that huggingface_hub reads HF_ENDPOINT/HF_HOME/HF_HUB_OFFLINE
# from the environment it was given. argv[1]: JSON list of steps, each
#   {"env": {...MASKWATCH_*...}, "nets": [...], "forward": bool, "post": [url, json]}
# Prints one JSON result per step on stdout, and "=== step K" on stderr before each step's logs.
LOAD_SCRIPT = r'''
import json, logging, os, sys, time, urllib.request
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(levelname)s: %(message)s")
import huggingface_hub
from pipeline.engine import weights as hub
for k, step in enumerate(json.loads(sys.argv[1])):
    print(f"=== step {k}", file=sys.stderr, flush=True)
    if step.get("post"):
        url, body = step["post"]
        urllib.request.urlopen(urllib.request.Request(url, json.dumps(body).encode(), method="POST"), timeout=5).read()
    os.environ.update(step.get("env", {}))
    res = {"step": k, "t0": time.time()}
    try:
        nets, src = hub.load_nets(nets=tuple(step.get("nets") or hub.NETS))
        res.update(kind=src.kind, folder=str(src.folder), repo=src.repo, revision=src.revision,
                   note=src.note, describe=src.describe())
        if step.get("forward"):
            import torch
            shapes = {}
            with torch.inference_mode():
                for name, net in nets.items():
                    side = {"pnet": 24, "rnet": 24, "onet": 48}.get(name) or net.config.crop_size
                    out = net(torch.rand(2, 3, side, side) * 2 - 1)
                    out = out if isinstance(out, tuple) else (out,)
                    assert all(bool(torch.isfinite(o).all()) for o in out), name
                    shapes[name] = [list(o.shape) for o in out]
            res["shapes"] = shapes
    except hub.WeightsError as e:
        res["error"] = str(e)
    res["t1"] = time.time()
    res["elapsed"] = res["t1"] - res["t0"]
    print(json.dumps(res), flush=True)
'''


@dataclass
class StepResult:
    kind: str | None
    folder: str | None
    error: str | None
    elapsed: float
    t0: float
    t1: float
    log: list[str]          # this step's stderr lines
    raw: dict

    @property
    def hub_lines(self) -> list[str]:
        return [line for line in self.log if line.startswith("maskwatch.hub")]


def run_steps(steps: list[dict], env: dict[str, str], timeout: float = 120) -> list[StepResult]:
    """Run LOAD_SCRIPT in a fresh interpreter; one StepResult per step. Fails loudly (with the
    child's stderr) when the child crashes."""
    import subprocess

    p = subprocess.run([PYTHON, "-c", LOAD_SCRIPT, json.dumps(steps)], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"load script failed ({p.returncode}):\n{p.stderr[-4000:]}")
    results = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    chunks = re.split(r"^=== step \d+\n", p.stderr, flags=re.M)[1:]
    assert len(results) == len(steps) == len(chunks), (p.stdout, p.stderr)
    return [StepResult(r.get("kind"), r.get("folder"), r.get("error"), r["elapsed"], r["t0"], r["t1"],
                       chunk.splitlines(), r) for r, chunk in zip(results, chunks)]


if __name__ == "__main__":  # serve a folder by hand: python -m tests.support.hub_server org/name FOLDER
    with HubServer() as hub:
        sha = hub.commit_folder(sys.argv[1], Path(sys.argv[2]))
        print(f"HF_ENDPOINT={hub.url} MASKWATCH_HUB_REPO={sys.argv[1]} MASKWATCH_HUB_REVISION={sha}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
