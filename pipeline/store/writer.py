"""BackgroundWriter: people events written off the frame path, in batches, by a thread."""
from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Iterable


from pipeline.records import PersonEvent
from pipeline.store.connection import redact
from pipeline.store.types import StoreError

if TYPE_CHECKING:
    from pipeline.store.events import EventStore

log = logging.getLogger("maskwatch.store")

class _Flush:
    def __init__(self):
        self.done = threading.Event()


_STOP = object()


class BackgroundWriter:
    """Events in, batched inserts out, on a thread of its own.

    add(event) never blocks on the database. The thread writes when `batch_size` events wait,
    when the oldest waiting event is `interval_s` old, on flush() and on close(). A failed write
    keeps the batch and retries at the next interval (last_error says why; at most max_buffer
    events are kept, the oldest beyond are counted in `dropped`). close() writes what is left
    (retrying a few times) and returns the number of events that could not be saved.
    """

    def __init__(self, store: EventStore, interval_s: float = 2.0, batch_size: int = 200,
                 max_buffer: int = 100_000, close_retries: int = 3):
        self.store = store
        self.interval_s = float(interval_s)
        self.batch_size = max(1, int(batch_size))
        self.max_buffer = max(1, int(max_buffer))
        self.close_retries = close_retries
        self.added = 0
        self.written = 0
        self.dropped = 0
        self.unsaved = 0
        self.last_error: str | None = None
        self._q: queue.Queue = queue.Queue()
        self._pending: list = []
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="maskwatch-store-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def add(self, event: PersonEvent) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the writer is closed")
            self.added += 1
            self._q.put(event)

    __call__ = add

    def add_many(self, events: Iterable[PersonEvent]) -> None:
        for e in events:
            self.add(e)

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything added so far; True when done (False on timeout or a failed write)."""
        with self._lock:
            if self._closed:
                return True
            f = _Flush()
            self._q.put(f)
        return f.done.wait(timeout) and self.last_error is None

    def close(self, timeout: float = 60.0) -> int:
        """Write what is buffered and stop the thread. Returns the events not saved."""
        with self._lock:
            if self._closed:
                return self.unsaved
            self._closed = True
            self._q.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():      # still writing: what is not written yet is not saved
            self.unsaved = max(self.unsaved, self.added - self.written)
            log.warning("the store writer did not finish within %.0f s; %d people not saved yet",
                        timeout, self.unsaved)
            return self.unsaved
        try:
            atexit.unregister(self.close)
        except Exception:
            pass
        return self.unsaved

    @property
    def closed(self) -> bool:
        return self._closed

    def _write(self, pending: list) -> bool:
        if not pending:
            return True
        try:
            self.store.add_events(pending)
        except Exception as e:   # StoreError, or anything a broken driver raises
            msg = str(e) if isinstance(e, StoreError) else f"{type(e).__name__}: {redact(e, self.store.url)}"
            if msg != self.last_error:
                log.warning("could not save %d people events: %s", len(pending), msg)
            self.last_error = msg
            if len(pending) > self.max_buffer:
                self.dropped += len(pending) - self.max_buffer
                del pending[: len(pending) - self.max_buffer]
            return False
        self.written += len(pending)
        pending.clear()
        self.last_error = None
        return True

    def _run(self) -> None:
        pending: list[PersonEvent] = []
        self._pending = pending           # for close(), when it times out
        due: float | None = None          # when the waiting events must be written
        while True:
            timeout = None if due is None else max(0.0, due - time.monotonic())
            try:
                item = self._q.get(timeout=timeout)
            except queue.Empty:
                item = None
            if isinstance(item, PersonEvent):
                pending.append(item)
                if due is None:
                    due = time.monotonic() + self.interval_s
                if len(pending) >= self.batch_size:
                    self._drain(pending)
                    ok = self._write(pending)
                    due = None if ok else time.monotonic() + self.interval_s
            elif isinstance(item, _Flush):
                self._drain(pending)
                ok = self._write(pending)
                due = None if ok else time.monotonic() + self.interval_s
                item.done.set()
            elif item is _STOP:
                self._drain(pending)
                for k in range(self.close_retries):
                    if self._write(pending):
                        break
                    time.sleep(min(1.0, 0.2 * (k + 1)))
                self.unsaved = len(pending) + self.dropped
                return
            else:   # interval elapsed
                ok = self._write(pending)
                due = None if ok or not pending else time.monotonic() + self.interval_s

    def _drain(self, pending: list) -> None:
        """Move events already queued (not flush/stop markers) into pending."""
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, PersonEvent):
                pending.append(item)
            else:   # a marker: put it back at the end; it is handled in order later
                self._q.put(item)
                return
