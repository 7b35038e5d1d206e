"""Run one benchmark operation as a fresh subprocess and measure it: wall time (start-up
included, like a CLI tool), the child's user+system CPU seconds and peak RSS (GNU ``time``),
and the S3 traffic the server saw meanwhile (``server_traffic``) and the CPU it spent: on a
small machine the server shares the cores with the client, so its CPU bounds every contender."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from server_traffic import Traffic, TrafficCounter

TIME_BIN = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None  # GNU time, for peak RSS


@dataclass
class Result:
    wall: float
    rss_mb: float
    cpu: float = 0.0
    """user + system CPU seconds of the child (less sensitive than wall time to a busy machine)"""
    stats: dict = field(default_factory=dict)
    """What the worker printed on its ``STATS {json}`` line (its own counts)."""
    traffic: Traffic | None = None
    """What the S3 server saw during the run."""
    server_cpu: float | None = None
    """user + system CPU seconds the S3 server process spent during the run."""

    @property
    def up(self) -> int | None:
        return self.traffic.up if self.traffic else None

    @property
    def down(self) -> int | None:
        return self.traffic.down if self.traffic else None

    @property
    def requests(self) -> dict[str, int]:
        """The server's counts by type, its GETs split into GET and HEAD by the client's count of
        HEADs (weed counts a HEAD as a GET); the total is the server's either way."""
        counted = dict(self.traffic.requests) if self.traffic else {}
        heads = min((self.stats.get("requests") or {}).get("HeadObject", 0), counted.get("GET", 0))
        if heads:
            counted["GET"] -= heads
            counted["HEAD"] = heads
        return {k: n for k, n in counted.items() if n}

    @property
    def request_count(self) -> int | None:
        return sum(self.requests.values()) if self.traffic else None


class Runner:
    def __init__(self, env: dict[str, str], cwd: Path, py_spy: Path | None, traffic: TrafficCounter | None = None,
                 server_pid: int | None = None) -> None:
        self.env = env
        self.cwd = cwd
        self.py_spy = py_spy
        self.traffic = traffic
        self.server_pid = server_pid

    def server_cpu(self) -> float | None:
        """CPU seconds the server process has used so far (Linux ``/proc``), None if unknown."""
        if self.server_pid is None:
            return None
        try:
            fields = Path(f"/proc/{self.server_pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def run(self, argv: list[str], env: dict[str, str] | None = None, label: str = "", src: str | None = None,
            profile: bool = False) -> Result:
        """Run ``argv`` to completion: wall time, CPU time and peak RSS of that one child.

        ``src`` goes first on PYTHONPATH (a patched copy of the library); ``profile`` wraps the
        child in py-spy when ``--py-spy`` is given.
        """
        full_env = {**os.environ, **self.env, **(env or {})}
        full_env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed tool runs from bytecode: see warm_bytecode
        if src:
            full_env["PYTHONPATH"] = src + os.pathsep + full_env.get("PYTHONPATH", "")
        if profile and self.py_spy:
            self.py_spy.mkdir(parents=True, exist_ok=True)
            profile_path = self.py_spy / (label.replace(" ", "_").replace("%", "pct") + ".txt")
            argv = ["py-spy", "record", "--threads", "--rate", "250", "--format", "raw", "-o", str(profile_path), "--",
                    *argv]
        os.sync()  # do not let write-back from the previous step land in this one
        before = self.traffic.read() if self.traffic else None  # read outside the timed span
        server_before = self.server_cpu()
        start = time.perf_counter()
        # Peak RSS: Linux carries the pre-exec high-water mark across exec, so a child forked
        # straight from this (large) interpreter would report at least our own RSS. GNU time
        # forks the child from a tiny process and reports the child's own maximum.
        fd, rss_path = tempfile.mkstemp(prefix="rss-")
        os.close(fd)
        if TIME_BIN:
            argv = [TIME_BIN, "-f", "%M", "-o", rss_path, *argv]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(argv, env=full_env, cwd=self.cwd, stdout=out, stderr=err)
            _, status, usage = os.wait4(proc.pid, 0)  # reap it ourselves: this child's own rusage
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        server_after = self.server_cpu()
        traffic = self.traffic.read() - before if self.traffic and before is not None else None
        try:
            rss_kb = int(Path(rss_path).read_text().split()[-1]) if TIME_BIN else usage.ru_maxrss
        except (ValueError, IndexError):
            rss_kb = usage.ru_maxrss
        os.unlink(rss_path)
        if proc.returncode != 0:
            raise RuntimeError(f"{label} failed ({proc.returncode}):\n{stderr.decode(errors='replace')[-3000:]}")
        stats = {}
        for line in stdout.decode().splitlines():
            if line.startswith("STATS "):
                stats = json.loads(line[6:])
        server_cpu = server_after - server_before if server_after is not None and server_before is not None else None
        return Result(wall, rss_kb / 1024, usage.ru_utime + usage.ru_stime, stats, traffic, server_cpu)

    def python(self, code: str, *args: object, env: dict[str, str] | None = None, label: str = "", src: str | None = None,
               profile: bool = False) -> Result:
        return self.run([sys.executable, "-c", code, *map(str, args)], env=env, label=label, src=src, profile=profile)


def warm_bytecode(sources: list[str | None]) -> None:
    """Compile the library's modules (each copy's, and this checkout's) before anything is timed.

    An installed package runs from bytecode that pip wrote; with ``PYTHONDONTWRITEBYTECODE`` in
    the environment (some shells and CI set it) every worker would compile the modules it imports
    again, about 0.1 s of start-up that no user pays, so workers run without it and find the
    bytecode written here."""
    roots = {Path(__file__).resolve().parent.parent, *(Path(s) for s in sources if s)}
    dirs = [str(root / pkg) for root in sorted(roots) for pkg in ("registry", "backends") if (root / pkg).is_dir()]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", *dirs], env=env, check=True)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" or n == int(n) else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def short(n: float | None) -> str:
    """Bytes in at most 6 characters for a table cell: ``0``, ``812``, ``1.0K``, ``50.3M``, ``1.00G``."""
    if n is None:
        return "-"
    if n < 1000:
        return f"{n:.0f}"
    for unit, size in (("K", 1024), ("M", 1024**2), ("G", 1024**3)):
        if n < 1000 * size or unit == "G":
            value = n / size
            return f"{value:.2f}{unit}" if value < 10 else f"{value:.1f}{unit}" if value < 100 else f"{value:.0f}{unit}"
    return str(n)


@dataclass
class Contender:
    """One registry configuration measured beside boto3: a library copy and its environment."""

    label: str
    """Its column in the report: ``f1``, ``f2``; ``f2 B`` for the second copy of an A/B run."""
    format: int
    """The store format it is asked to write (``REGISTRY_FORMAT``)."""
    src: str | None = None
    """Put first on PYTHONPATH (a patched copy of the library), or the installed one."""
    env: dict[str, str] = field(default_factory=dict)
