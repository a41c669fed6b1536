"""The folder's vectors as append-only segment files, with deleted rows left out: read like one matrix."""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, BinaryIO

import numpy as np

from indexing.store.scan import similarities

CHUNK_ROWS = 50_000  # rows copied at a time when segments are folded into one file: 400 MB


class Segments:
    """Rows of several (memory-mapped) arrays, in order, with some left out.

    Positions count the rows that are left (live), in order: a removed row is never scanned into a result,
    and nothing else moves. live: the row numbers (over all segments together) that are left; None: all.
    """

    def __init__(self, arrays: Sequence[np.ndarray], live: np.ndarray | None, *, pread: bool = False):
        self.arrays = list(arrays)
        self.starts = np.cumsum([0, *(len(a) for a in self.arrays)])
        self.live = live
        self.dim = int(self.arrays[0].shape[1])
        self.shape = (len(live) if live is not None else int(self.starts[-1]), self.dim)
        self.dtype = np.dtype(np.float32)
        self._files: list[int | None] = [None] * len(self.arrays)
        if pread:
            # Scattered rows are read with pread: touching them through the memory map makes the
            # kernel map whole page-cache folios, and RSS grew to the whole file (8 GB at 1M products).
            for i, array in enumerate(self.arrays):
                if isinstance(array, np.memmap) and array.filename:
                    self._files[i] = fd = os.open(array.filename, os.O_RDONLY)
                    weakref.finalize(self, os.close, fd)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def rows(self) -> int:
        """Rows in all segments, removed ones too."""
        return int(self.starts[-1])

    def row_of(self, positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64)
        return positions if self.live is None else self.live[positions]

    def position_of(self, rows: np.ndarray) -> np.ndarray:
        """Positions of these rows; -1 for a removed one."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.live is None:
            return rows
        found = np.minimum(np.searchsorted(self.live, rows), max(len(self.live) - 1, 0))
        return np.where(self.live[found] == rows, found, -1) if len(self.live) else np.full(len(rows), -1)

    def take(self, positions: np.ndarray) -> np.ndarray:
        """The vectors at these positions, as a new array."""
        rows = self.row_of(positions)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        segment = np.searchsorted(self.starts, rows, side="right") - 1
        for s in np.unique(segment):
            mine = np.flatnonzero(segment == s)
            local = rows[mine] - self.starts[s]
            array, fd = self.arrays[s], self._files[s]
            if fd is None:
                out[mine] = array[local]
                continue
            size = self.dim * 4
            for i, row in zip(mine, local, strict=True):
                os.preadv(fd, [memoryview(out[i]).cast("B")], array.offset + int(row) * size)
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.take(np.arange(self.shape[0]))

    def scan(self, queries: np.ndarray) -> np.ndarray:
        """Dot products of the queries with every live row (as scan.similarities, segment by segment)."""
        parts = [similarities(array, queries) for array in self.arrays]
        sims = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
        return sims if self.live is None else sims[..., self.live]

    def chunks(self) -> Iterator[np.ndarray]:
        for start in range(0, self.shape[0], CHUNK_ROWS):
            yield self.take(np.arange(start, min(start + CHUNK_ROWS, self.shape[0])))

    def npy_writer(self) -> Callable[[BinaryIO], None]:
        """Writes the live rows as one .npy file, a chunk at a time (never the whole matrix in memory)."""
        def write(out: BinaryIO) -> None:
            header = {"descr": "<f4", "fortran_order": False, "shape": self.shape}
            np.lib.format.write_array_header_1_0(out, header)
            for chunk in self.chunks():
                out.write(np.ascontiguousarray(chunk, dtype="<f4").tobytes())
        return write
