"""A throwaway PostgreSQL server for the store tests, started by the tests themselves.

Uses the Debian `postgresql` package's binaries (initdb, pg_ctl under /usr/lib/postgresql/N/bin,
or on PATH). The cluster lives in a fresh temp folder, listens on 127.0.0.1 on a free port and
on a socket in that folder, trusts local connections, and is stopped and deleted afterwards.
As root (CI), it runs as the `postgres` system user (initdb refuses root).

MASKWATCH_TEST_PG_URL, when set, names an existing server to use instead.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class PgUnavailable(RuntimeError):
    pass


def _bindir() -> Path:
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if cands:
        return Path(cands[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and (Path(out.stdout.strip()) / "initdb").exists():
            return Path(out.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    raise PgUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found; "
                        "install the Debian package `postgresql`")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self):
        self.bindir = _bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="maskwatch-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.user = None
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PgUnavailable("running as root and there is no `postgres` user to run the "
                                    "server as") from None
            self.user = "postgres"
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.url = f"postgresql+psycopg2://maskwatch@127.0.0.1:{self.port}/maskwatch_test"

    def _cmd(self, *args) -> list[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            runuser = shutil.which("runuser")
            cmd = [runuser, "-u", self.user, "--", *cmd] if runuser else ["su", self.user, "-s",
                                                                        "/bin/sh", "-c", " ".join(cmd)]
        return cmd

    def _run(self, *args, timeout=120):
        p = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=timeout,
                           cwd=self.dir)
        if p.returncode != 0:
            raise PgUnavailable(f"{args[0]} failed ({p.returncode}): {(p.stderr or p.stdout)[-800:]}")
        return p

    def start(self) -> "PgServer":
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-locale", "--no-sync")
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.dir} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-o", opts,
                  "-w", "-t", "60", "start")
        import psycopg2
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                        dbname="postgres", connect_timeout=3)
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE ROLE maskwatch LOGIN")
            cur.execute("CREATE DATABASE maskwatch_test OWNER maskwatch")
        conn.close()
        return self

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        except Exception:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self) -> str:
        try:
            return (self.dir / "server.log").read_text()[-2000:]
        except OSError:
            return ""


def pg_required() -> bool:
    """In CI (CI set) or with MASKWATCH_REQUIRE_PG=1, a missing PostgreSQL is a failure."""
    def on(name):
        return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")
    return on("CI") or on("MASKWATCH_REQUIRE_PG")
