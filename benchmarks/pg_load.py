"""Many cameras on one PostgreSQL: N `watch`-like writers at a realistic rate, at 100x, and as
fast as they can; one writer stopped with SIGTERM mid-run, one killed with SIGKILL.

    python -m benchmarks.pg_load [--url URL] [--writers 1 4 16] [--seconds 5] [--long] [--max] [--json OUT]

Each writer is a process of its own, like one `python -m pipeline watch` per camera: it opens
the store (`pipeline.store.open_store`, schema migration included) and writes people through
the store's BackgroundWriter (`store.writer()`, what `PeopleCounter` uses for `watch`, with the
same settings: a batch every flush_interval_s = 2 s or every 200 people), and stops on SIGTERM
through `watch`'s own signal handler, which closes the writer (buffered people are written).
Without --url a throwaway PostgreSQL is started on 127.0.0.1 (tests/pg_server.py) and removed.

Reported per (writers, rate): people sent, stored, lost (sent - stored; must be 0),
duplicates, events/s stored over the phase, writer latency p50/p95 (add() -> committed, which
includes the wait for the next batch) and insert latency p50/p95 (one batch's transaction).
Rates per writer: realistic 0.5 people/s (a busy entrance: 1800 an hour), 100x = 50/s, and max
(no pause between people).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REALISTIC_RATE = 0.5
RATES = {"realistic": REALISTIC_RATE, "100x": REALISTIC_RATE * 100, "max": 0.0}


# ----------------------------------------------------------------------------- one writer
def writer_main(url: str, source: str, rate: float, seconds: float, go_file: str, out_file: str,
                progress_file: str | None = None) -> int:
    """One camera's writer: add people at `rate` per second (0: as fast as possible) for
    `seconds` after `go_file` appears, or until SIGTERM; then close the writer (flush)."""
    sys.path.insert(0, str(ROOT))
    from pipeline.store import StoreConfig, open_store
    from pipeline.records import PersonEvent
    from pipeline.streams.watch import install_signals, restore_signals

    stop = threading.Event()
    old = install_signals(stop)             # watch's SIGINT/SIGTERM handling
    store = open_store(url, StoreConfig(url=url))
    insert_ms: list[float] = []
    latency_ms: list[float] = []
    orig = store.add_events

    def timed(events):                       # the writer thread's one call per batch
        t = time.time()
        n = orig(events)
        done = time.time()
        insert_ms.append((done - t) * 1000)
        latency_ms.extend((done - e.last_seen) * 1000 for e in events)
        return n
    store.add_events = timed
    writer = store.writer()
    Path(out_file + ".ready").write_text("1")
    while not Path(go_file).exists() and not stop.is_set():
        time.sleep(0.01)
    sent = 0
    t0 = time.time()
    end = t0 + seconds
    next_progress = t0 + 0.2
    labels = ("mask", "no_mask", "incorrect")
    while not stop.is_set():
        now = time.time()
        if now >= end:
            break
        if rate > 0:
            due = t0 + sent / rate
            if due > now:
                stop.wait(min(due - now, end - now))
                continue
        writer.add(PersonEvent(first_seen=now - 2.5, last_seen=now, label=labels[sent % 3],
                               confidence=0.9, frames=20, source=source, track_id=sent + 1))
        sent += 1
        if progress_file and now >= next_progress:
            Path(progress_file).write_text(json.dumps({"sent": sent, "t": now}))
            next_progress = now + 0.2
    t_stop = time.time()
    unsaved = writer.close()
    restore_signals(old)
    store.close()
    Path(out_file).write_text(json.dumps({
        "source": source, "sent": sent, "unsaved": unsaved, "stopped": stop.is_set(),
        "seconds": t_stop - t0, "close_s": time.time() - t_stop,
        "latency_ms": latency_ms, "insert_ms": insert_ms}))
    return 0


# ------------------------------------------------------------------------------ the driver
def _pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))], 1)


def _stored(url: str, sources: list[str]) -> dict[str, int]:
    import sqlalchemy as sa
    from pipeline.store import create_engine
    from pipeline.store.schema import people_events
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            rows = c.execute(sa.select(people_events.c.source, sa.func.count()).where(
                people_events.c.source.in_(sources)).group_by(people_events.c.source)).all()
    finally:
        eng.dispose()
    return {s: int(n) for s, n in rows}


def _spawn(url, source, rate, seconds, go, out, progress=None):
    cmd = [sys.executable, "-m", "benchmarks.pg_load", "--writer", "--url", url, "--source", source,
           "--rate", str(rate), "--seconds", str(seconds), "--go", go, "--out", out]
    if progress:
        cmd += ["--progress", progress]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"))


def run_phase(url: str, writers: int, rate: float, seconds: float, workdir: Path,
              kill: dict | None = None) -> dict:
    """N writer processes at `rate` for `seconds`. kill: {"signal": SIGTERM|SIGKILL, "after": s}
    sends the signal to writer 0 after that many seconds of running."""
    run = uuid.uuid4().hex[:8]
    go = str(workdir / f"go-{run}")
    procs, outs, sources, progress = [], [], [], None
    for k in range(writers):
        src = f"load-{run}-cam{k:02d}"
        out = str(workdir / f"{src}.json")
        prog = str(workdir / f"{src}.progress") if (kill and k == 0) else None
        progress = progress or prog
        procs.append(_spawn(url, src, rate, seconds, go, out, prog))
        outs.append(out)
        sources.append(src)
    deadline = time.monotonic() + 180
    while not all(Path(o + ".ready").exists() for o in outs):
        bad = [p for p in procs if p.poll() not in (None, 0)]
        if bad:
            raise RuntimeError("a writer failed to start: " + bad[0].stderr.read().decode()[-1500:])
        if time.monotonic() > deadline:
            raise RuntimeError("writers did not start in 180 s")
        time.sleep(0.05)
    t0 = time.time()
    Path(go).write_text("go")
    killed_sent = None
    if kill:
        time.sleep(kill["after"])
        procs[0].send_signal(kill["signal"])
    for p in procs:
        p.wait(seconds + 180)
    t_end = time.time()
    results = []
    for o, p in zip(outs, procs):
        if Path(o).exists():
            results.append(json.loads(Path(o).read_text()))
        else:                     # SIGKILLed: what it had sent, from its last progress note
            sent = json.loads(Path(progress).read_text())["sent"] if progress and Path(progress).exists() else 0
            killed_sent = sent
            results.append({"source": sources[outs.index(o)], "sent": sent, "killed": True,
                            "latency_ms": [], "insert_ms": [], "seconds": kill["after"]})
    stored = _stored(url, sources)
    lat = [x for r in results for x in r["latency_ms"]]
    ins = [x for r in results for x in r["insert_ms"]]
    per = []
    for r in results:
        n = stored.get(r["source"], 0)
        per.append({"source": r["source"], "sent": r["sent"], "stored": n,
                    "lost": max(0, r["sent"] - n), "duplicates": max(0, n - r["sent"]),
                    "killed": r.get("killed", False), "stopped": r.get("stopped", False)})
    live = [p for p in per if not p["killed"]]
    total_stored = sum(p["stored"] for p in per)
    return {
        "writers": writers, "rate_per_writer": rate, "seconds": seconds,
        "sent": sum(p["sent"] for p in per), "stored": total_stored,
        "lost": sum(p["lost"] for p in live), "duplicates": sum(p["duplicates"] for p in per),
        "events_per_s": round(total_stored / max(1e-6, t_end - t0), 1),
        "events_per_s_sent": round(sum(p["sent"] for p in per) / seconds, 1),
        "writer_latency_ms_p50": _pct(lat, 50), "writer_latency_ms_p95": _pct(lat, 95),
        "insert_ms_p50": _pct(ins, 50), "insert_ms_p95": _pct(ins, 95),
        "kill": ({"signal": signal.Signals(kill["signal"]).name, "after_s": kill["after"],
                  "victim": per[0], "sent_before_kill_seen": killed_sent} if kill else None),
        "per_writer": per}


def run_all(url: str, writer_counts=(1, 4, 16), seconds: float = 5.0, rates=RATES,
            kill_seconds: float | None = None, log=print) -> dict:
    out = {"phases": [], "kills": []}
    with tempfile.TemporaryDirectory(prefix="mwload") as d:
        work = Path(d)
        for n in writer_counts:
            for name, rate in rates.items():
                r = run_phase(url, n, rate, seconds, work)
                r["rate"] = name
                out["phases"].append(r)
                log(f"N={n:>2} {name:>9}: sent {r['sent']}, stored {r['stored']}, lost {r['lost']}, "
                    f"{r['events_per_s']} events/s, latency p50/p95 {r['writer_latency_ms_p50']}/"
                    f"{r['writer_latency_ms_p95']} ms, insert p50/p95 {r['insert_ms_p50']}/{r['insert_ms_p95']} ms")
        ks = kill_seconds or max(seconds, 4.0)
        n = max(writer_counts)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            r = run_phase(url, n, RATES["100x"], ks, work, kill={"signal": sig, "after": ks / 2})
            r["rate"] = "100x"
            out["kills"].append(r)
            v = r["kill"]["victim"]
            log(f"N={n} 100x, writer 0 sent {sig.name} after {ks / 2:.1f} s: it sent {v['sent']}, "
                f"stored {v['stored']}, lost {v['sent'] - v['stored']}; others lost {r['lost']}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="PostgreSQL URL (default: a throwaway server on 127.0.0.1)")
    ap.add_argument("--writers", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--seconds", type=float, default=5.0, help="per phase (default 5)")
    ap.add_argument("--long", action="store_true", help="60 s per phase")
    ap.add_argument("--max", action="store_true",
                    help="also a phase without pauses (capacity; it queues far more than it writes)")
    ap.add_argument("--json", help="write the results here")
    # one writer process (internal)
    ap.add_argument("--writer", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--source", help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--go", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--progress", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.writer:
        return writer_main(a.url, a.source, a.rate, a.seconds, a.go, a.out, a.progress)
    seconds = 60.0 if a.long else a.seconds
    server = None
    url = a.url
    if not url:
        from tests.support.pg_server import PgServer
        server = PgServer().start()
        url = server.url
    try:
        from pipeline.store import open_store
        open_store(url).close()              # schema once, before the writers race for it
        rates = RATES if a.max else {k: v for k, v in RATES.items() if k != "max"}
        res = run_all(url, a.writers, seconds, rates)
    finally:
        if server:
            server.stop()
    res["machine"] = {"cpus": os.cpu_count(), "load": os.getloadavg()}
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
