"""The C allocator's settings for a bot that runs for weeks on a small server."""

from __future__ import annotations

import contextlib
import ctypes
import functools

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
ARENAS = 2


@functools.cache
def _libc() -> ctypes.CDLL | None:
    with contextlib.suppress(OSError):
        return ctypes.CDLL("libc.so.6")
    return None


def limit_arenas() -> None:
    """Few malloc arenas: glibc gives each new thread (decoding, the finder, ONNX Runtime, the HTTP client)
    its own, up to 8 per core, and each keeps the memory its thread freed. After a burst of 20 users that
    was ~90 MB of the bot's peak. Call it before any thread starts; without glibc it does nothing."""
    libc = _libc()
    with contextlib.suppress(AttributeError):
        if libc is not None:
            libc.mallopt(M_ARENA_MAX, ARENAS)


def release_freed_memory() -> None:
    """Give back to the system what glibc keeps of freed memory: after loading (the parsed products, the
    model's protobuf) and after a burst of photos. Without glibc it does nothing."""
    libc = _libc()
    with contextlib.suppress(AttributeError):
        if libc is not None:
            libc.malloc_trim(0)
