"""Run a benchmark contender in its own process under GNU time: wall seconds, its own peak RSS.

Not os.wait4 on a direct child: Linux keeps the RSS high-water mark of the forked image across
execve, so a child forked from a (100 MB) Python process would report at least the parent's RSS.
/usr/bin/time is small, and reports the ru_maxrss of its own child.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIME = "/usr/bin/time"


def run_timed(argv: list[str], cwd: Path, stdout=subprocess.DEVNULL, merge_output: bool = False) -> tuple[float, dict]:
    """(wall seconds, {"peak_rss_mb", "cpu_s"}) of argv; RuntimeError with its output if it fails.

    merge_output: the child's stderr goes to its stdout (which must then be PIPE) and both are
    shown on failure; otherwise stderr is captured, shown on failure, and echoed on success
    when stdout is not captured.
    """
    fd, stats = tempfile.mkstemp(prefix="time-", suffix=".txt")
    os.close(fd)
    try:
        started = time.perf_counter()
        proc = subprocess.run(
            [TIME, "-o", stats, "-f", "%M %U %S", *argv],
            stdout=stdout,
            cwd=cwd,
            stderr=subprocess.STDOUT if merge_output else subprocess.PIPE,
        )
        seconds = time.perf_counter() - started
        output = (proc.stdout if merge_output else proc.stderr) or b""
        if proc.returncode != 0:
            err = output.decode(errors="replace").strip()[-3000:]
            raise RuntimeError(f"{' '.join(argv[:4])} exited with {proc.returncode}: {err}")
        if not merge_output and output and stdout is not None:
            sys.stderr.write(output.decode(errors="replace"))
        maxrss_kib, utime, stime = Path(stats).read_text().split()[-3:]
    finally:
        os.unlink(stats)
    return seconds, {"peak_rss_mb": int(maxrss_kib) / 1024, "cpu_s": float(utime) + float(stime)}
