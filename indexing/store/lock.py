"""One writer at a time per index: an advisory lock on a file in the index folder, which the kernel frees when its
holder exits, however it exits (kill -9 included), so a crashed writer never leaves the index locked."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from indexing.errors import IndexBusyError, IndexFormatError

log = logging.getLogger(__name__)

LOCK_FILE = ".writer.lock"


class _Held:
    """This process's hold on one index: a thread lock first (threads of one process take turns), then the file's."""

    def __init__(self) -> None:
        self.threads = threading.RLock()
        self.depth = 0
        self.fd: int | None = None


_held: dict[str, _Held] = {}
_registry = threading.Lock()


def holder(path: Path) -> str:
    """Who holds the lock, as its holder wrote it: "pid 123: fashion-index sync ..."."""
    try:
        return path.read_text("utf-8").strip() or "another process"
    except OSError:
        return "another process"


def _lock_file(directory: Path, wait: bool) -> int:
    path = directory / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise IndexBusyError(f"{directory} is being written by {holder(path)}; try again when it is done "
                                     "(or without --no-wait, to wait for it)") from None
            log.info("waiting for the index's other writer (%s) to finish ...", holder(path))
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {' '.join(sys.argv[:4])}\n".encode(), 0)
        return fd
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def writing(directory: str | Path, *, wait: bool = True, create: bool = False) -> Iterator[None]:
    """Hold the index's writer lock while the block runs; re-entrant, so a command that holds it can call library
    writers that take it too. wait=False: raise IndexBusyError at once if another process holds it. create: make
    the folder (a build's); otherwise a missing folder is no index."""
    directory = Path(directory)
    if create:
        directory.mkdir(parents=True, exist_ok=True)
    elif not directory.is_dir():
        raise IndexFormatError(f"no index at {directory}: build one with `fashion-index build`")
    with _registry:
        held = _held.setdefault(os.path.realpath(directory), _Held())
    if not held.threads.acquire(blocking=wait):
        raise IndexBusyError(f"{directory} is being written by another thread of this process")
    try:
        if held.depth == 0:
            held.fd = _lock_file(directory, wait)
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0 and held.fd is not None:
                os.close(held.fd)  # closing the descriptor releases the lock
                held.fd = None
    finally:
        held.threads.release()
