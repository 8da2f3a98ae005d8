"""Blocks read, parsed, validated and split by month on two threads, handed over in file order."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa

from . import parse, validate
from .blocks import BlockReader
from .months import YearMonth, split_by_month
from .rejects import BlockRejects


@dataclass
class Block:
    """One block's outcome: what the converter buffers, counts and rejects."""

    rows_read: int  # non-empty lines read (rows, valid or not)
    bytes: int
    rows: int  # valid rows
    parts: list[tuple[YearMonth, pa.Table]]
    rejects: list[tuple[int, str, str]]


class Producer:
    """Reads, parses, validates and splits blocks on `workers` threads at once, and hands them
    over in file order. Blocks are read one after the other (under a lock), each into its
    worker's own buffer; at most `workers + depth` blocks are read and not yet taken, so
    memory stays bounded when the writer is slower. A worker's error is raised to the taker.
    """

    def __init__(
        self,
        reader: BlockReader,
        fmt: parse.FileFormat,
        checks: validate.Checks,
        partition_by: str,
        workers: int = 2,
        depth: int = 2,
    ):
        self._reader, self._fmt, self._checks, self._partition_by = reader, fmt, checks, partition_by
        self._read_lock = threading.Lock()
        self._state = threading.Condition()
        self._window = workers + depth
        self._read = 0  # blocks read (the next block's sequence number)
        self._taken = 0  # blocks handed over
        self._end: int | None = None  # the number of blocks, once the end of the file is seen
        self._results: dict[int, Block] = {}
        self._error: BaseException | None = None
        self._stop = False
        self._threads = [
            threading.Thread(target=self._run, name=f"funnel-parse-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    @classmethod
    def over(cls, handle: BinaryIO, header: bytes, block_size: int, *args, **kwargs) -> Producer:
        """A producer over an open file whose header line was read (and checked) already."""
        return cls(BlockReader(handle, block_size, already_read=header), *args, **kwargs)

    @property
    def reader(self) -> BlockReader:
        return self._reader

    def _run(self) -> None:
        buf = bytearray()
        try:
            while True:
                with self._state:
                    while not (
                        self._stop
                        or self._end is not None
                        or self._error is not None
                        or self._read - self._taken < self._window
                    ):
                        self._state.wait()
                    if self._stop or self._end is not None or self._error is not None:
                        return
                with self._read_lock:
                    got = self._reader.next_block(buf)
                    if got is None:
                        with self._state:
                            self._end = self._read
                            self._state.notify_all()
                        return
                    first_line, block, lines, buf = got
                    with self._state:
                        seq = self._read
                        self._read += 1
                rejects = BlockRejects()
                parsed = parse.parse_block(first_line, block, lines, rejects, self._fmt)
                valid = validate.validate(parsed.table, first_line, parsed.line_numbers, rejects, self._checks)
                parts = split_by_month(valid, self._partition_by) if valid.num_rows else []
                item = Block(parsed.rows, len(block), valid.num_rows, parts, rejects.rows)
                del block, parsed, valid
                with self._state:
                    self._results[seq] = item
                    self._state.notify_all()
        except BaseException as exc:  # raised to the taker
            with self._state:
                self._error = self._error or exc
                self._state.notify_all()

    def __iter__(self) -> Iterator[Block]:
        while True:
            with self._state:
                while (
                    self._error is None
                    and self._taken not in self._results
                    and (self._end is None or self._taken < self._end)
                ):
                    self._state.wait()
                if self._error is not None:
                    raise self._error
                if self._taken not in self._results:
                    return  # every block was handed over
                item = self._results.pop(self._taken)
                self._taken += 1
                self._state.notify_all()
            yield item

    def close(self) -> None:
        """Stop the threads (also when the taker failed) and wait for them."""
        with self._state:
            self._stop = True
            self._state.notify_all()
        for thread in self._threads:
            thread.join()
        self._results.clear()
