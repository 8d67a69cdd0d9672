"""Facts about the machine a benchmark ran on, shared by the benchmarks in ``bench``."""

from __future__ import annotations

import contextlib
import os
import platform
import time
from pathlib import Path

from google.protobuf import __version__ as protobuf_version
from google.protobuf.internal import api_implementation

# Share of all CPUs in use before the run above which the machine counts as busy.
BUSY = 0.25


def cpu_fact(busy: float | None) -> str:
    """CPUs, usable CPUs, the model, and how busy they were before the run (``cpu_in_use``)."""
    cpus = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    if busy is None:
        before = "unknown"
    else:
        # Other work on the machine takes CPU from what is measured.
        before = f"{busy:.0%}" + (" (busy: numbers are low)" if busy >= BUSY else "")
    return f"CPUs: {cpus} ({usable} usable), {cpu_model()}; CPU in use before the run: {before}"


def os_fact() -> str:
    return f"OS: {platform.platform()}"


def python_fact() -> str:
    return f"Python: {platform.python_implementation()} {platform.python_version()}"


def protobuf_fact() -> str:
    return f"protobuf: {protobuf_version} ({api_implementation.Type()} backend)"


def cpu_in_use(seconds: float = 1.0) -> float | None:
    """The share of all CPUs that was not idle for ``seconds``, from /proc/stat (Linux).

    Not the load average: that trails by a minute, so it would count a previous run."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all jiffies; idle + iowait

    try:
        total_start, idle_start = sample()
        time.sleep(seconds)
        total_end, idle_end = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total_end - total_start
    return 1 - (idle_end - idle_start) / total if total > 0 else None


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown CPU"


def filesystem(path: Path) -> str:
    """The filesystem type holding ``path`` (Linux), e.g. ext4 or tmpfs."""
    best, kind = "", "unknown filesystem"
    with contextlib.suppress(OSError):
        resolved = str(path.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) < 3:
                continue
            mount = fields[1]
            inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) > len(best):
                best, kind = mount, fields[2]
    return f"{kind} ({path})"
