"""Reading a landing file in blocks of whole lines (docs/architecture.md, contract 6).

The converter reads the file after its header in blocks of whole lines so that several blocks
can be parsed at once; every byte read, the header's included, goes through SHA-256 on the
way: the file's checksum identifies it in its marker (publish.py).
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO


class BlockReader:
    """Reads a file's lines in blocks, each into the caller's buffer; call `next_block` from one
    thread at a time.

    The partial line at the end of a read is carried to the front of the next block; a line
    longer than the buffer gets a larger buffer; a last line without a line break gets one.
    `first_line` is the number of the first line read (2: after the header).
    """

    def __init__(self, handle: BinaryIO, block_size: int, first_line: int = 2, already_read: bytes = b""):
        self.handle, self.block_size = handle, max(block_size, 1)
        self.line = first_line  # the number of the next block's first line
        self.carry = b""
        self.eof = False
        self._sha = hashlib.sha256(already_read)

    def sha256(self) -> str:
        """The hex SHA-256 of every byte read so far (the whole file, once `next_block` returned None)."""
        return self._sha.hexdigest()

    def next_block(self, buf: bytearray) -> tuple[int, memoryview, int, bytearray] | None:
        """(line number of the block's first line, the block's whole lines, how many, the buffer
        they are in: `buf`, or a larger one), or None at the end of the file."""
        readinto = getattr(self.handle, "readinto", None)
        size = max(self.block_size, len(self.carry) + 1)
        while True:
            if len(buf) < size:
                buf = bytearray(size)
            filled = len(self.carry)
            buf[:filled] = self.carry
            with memoryview(buf) as view:
                while not self.eof and filled < len(buf):
                    if readinto is not None:
                        n = readinto(view[filled : len(buf)]) or 0
                    else:
                        data = self.handle.read(len(buf) - filled)
                        n = len(data)
                        view[filled : filled + n] = data
                    self._sha.update(view[filled : filled + n])  # releases the GIL for large pieces
                    self.eof = n == 0
                    filled += n
            if filled == 0:
                return None
            cut = buf.rfind(b"\n", 0, filled) + 1
            if self.eof and cut < filled:  # the last line has no line break: give it one
                if filled == len(buf):
                    buf = buf + b"\n"
                else:
                    buf[filled] = ord("\n")
                filled += 1
                cut = filled
            if cut:
                break
            self.carry = bytes(buf[:filled])  # one line longer than the buffer: read on, larger
            size = 2 * len(buf)
        self.carry = bytes(buf[cut:filled])
        first, lines = self.line, buf.count(b"\n", 0, cut)
        self.line += lines
        return first, memoryview(buf)[:cut], lines, buf
