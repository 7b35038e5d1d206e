"""A small SeaweedFS cluster on loopback, for tests: each component its own ``weed`` process.

One master (every volume kept on two servers: replication ``001``), volume servers, a filer,
and S3 gateways sharing one identities file, so a test can point clients at different
gateways and SIGKILL (then restart) one volume server or one gateway while the rest runs.
Ports come from ``servers.pick_ports`` (``REGISTRY_TEST_PORTS``), each with its gRPC twin.

>>> with SeaweedCluster(tmp_path, bucket="registry-cluster") as cluster:  # doctest: +SKIP
...     cluster.client(1).list_objects_v2(Bucket="registry-cluster")
"""
from __future__ import annotations

import json
import secrets
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from servers import GRPC_OFFSET, REGION, find_weed, pick_ports, port_is_free

REPLICATION = "001"
"""Two copies of every volume, on two different servers of the same rack."""
# Volumes grown at a time, by copy count (the defaults, 7 and 6, cost seconds on a busy machine).
MASTER_TOML = "[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 3\n"


class WeedProcess:
    """One ``weed`` process (master, volume, filer or s3), restartable on the same port and directory."""

    def __init__(self, name: str, args: list[str], port: int, workdir: Path) -> None:
        self.name, self.args, self.port, self.workdir = name, args, port, workdir
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ports(self) -> list[int]:
        return [self.port, self.port + GRPC_OFFSET]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start it once its ports are free again (a killed process may hold them a moment)."""
        deadline = time.monotonic() + 30
        while not all(port_is_free(p) for p in self.ports):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: ports {self.ports} still busy after 30 s")
            time.sleep(0.1)
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([find_weed(), *self.args], stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True)

    def kill(self) -> None:
        """SIGKILL: no goodbye to the master, no flush; then remove its unix sockets."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        for port in self.ports:  # weed names its unix sockets after its ports
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)

    def log_tail(self, lines: int = 12) -> str:
        try:
            log = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            log = ["(no log)"]
        state = "running" if self.running else f"exited {self.proc.returncode}" if self.proc else "stopped"
        return "\n".join([f"--- {self.name} ({state}) {self.log_path} ---", *log[-lines:]])


class SeaweedCluster:
    """Master, ``volumes`` volume servers, a filer and ``gateways`` S3 gateways; ``bucket`` is created.

    ``start()`` returns once a test object written through each gateway reads back through the
    other; ``stop()`` kills every process (the data is thrown away).
    """

    def __init__(self, data_dir: str | Path, bucket: str, volumes: int = 3, gateways: int = 2) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.bucket = bucket
        self.access_key = "test-" + secrets.token_hex(6)
        self.secret_key = secrets.token_hex(20)
        master_port, filer_port, *rest = pick_ports(2 + volumes + gateways, grpc=True)
        master = f"127.0.0.1:{master_port}"
        loopback = ["-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
        self.master = WeedProcess("master", [
            "master", *loopback, f"-port={master_port}", f"-mdir={self.data_dir / 'master'}", "-peers=none",
            f"-defaultReplication={REPLICATION}", "-volumeSizeLimitMB=256", "-telemetry=false",
        ], master_port, self.data_dir / "master")
        self.volumes = [WeedProcess(f"volume{i}", [
            "volume", *loopback, f"-port={port}", f"-dir={self.data_dir / f'volume{i}'}", f"-mserver={master}",
            "-max=100", "-preStopSeconds=0",
        ], port, self.data_dir / f"volume{i}") for i, port in enumerate(rest[:volumes])]
        self.filer = WeedProcess("filer", [
            "filer", *loopback, f"-port={filer_port}", f"-master={master}", f"-defaultStoreDir={self.data_dir / 'filer'}",
        ], filer_port, self.data_dir / "filer")
        config = self.data_dir / "s3.json"
        self.gateways = [WeedProcess(f"s3-{i}", [
            "-v=1",  # logs each read from a volume server that failed (and was retried on a replica)
            "s3", *loopback, f"-port={port}", f"-filer=127.0.0.1:{filer_port}", f"-config={config}",
            "-port.iceberg=0", "-port.lance=0", "-autoCreateBucket=false",
        ], port, self.data_dir / f"s3-{i}") for i, port in enumerate(rest[volumes:])]

    @property
    def processes(self) -> list[WeedProcess]:
        return [self.master, *self.volumes, self.filer, *self.gateways]

    # -- clients ---------------------------------------------------------------------------
    def endpoint_url(self, gateway: int) -> str:
        return f"http://127.0.0.1:{self.gateways[gateway].port}"

    def client(self, gateway: int, **config: Any) -> Any:
        """A boto3 S3 client for one gateway; ``config`` goes to botocore Config."""
        return boto3.client("s3", endpoint_url=self.endpoint_url(gateway), aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=REGION,
                            config=Config(**config) if config else None)

    def env(self, gateway: int) -> dict[str, str]:
        """Environment variables pointing boto3 (in a subprocess) at one gateway."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url(gateway), "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": REGION}

    # -- life cycle ------------------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> None:
        """Start every process in order and wait until the cluster takes writes through both gateways."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.master.workdir.mkdir(parents=True, exist_ok=True)
        (self.master.workdir / "master.toml").write_text(MASTER_TOML)  # weed reads it from its working dir
        identity = {"name": "admin", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"]}
        (self.data_dir / "s3.json").write_text(json.dumps({"identities": [identity]}))
        deadline = time.monotonic() + timeout
        try:
            self.master.start()
            self._wait("the master to lead", deadline, lambda: self._master_json("/cluster/status").get("IsLeader"))
            for volume in self.volumes:
                volume.start()
            self.wait_for_volume_servers(deadline)
            self.filer.start()
            self._wait("the filer", deadline, lambda: self._http_ok(self.filer.port, "/"))
            for gateway in self.gateways:
                gateway.start()
            for i in range(len(self.gateways)):
                self.wait_for_gateway(i, deadline)
            self._wait(f"bucket {self.bucket}", deadline, self._create_bucket)
            self._wait("a write through each gateway read back through the other", deadline, self._round_trip)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.kill()

    def __enter__(self) -> SeaweedCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults ----------------------------------------------------------------------------
    def kill_volume(self, i: int) -> None:
        self.volumes[i].kill()

    def restart_volume(self, i: int, timeout: float = 60.0) -> None:
        """Kill (if running) and start volume server ``i`` on its directory; wait until it answers
        and the master lists it."""
        volume = self.volumes[i]
        volume.kill()
        volume.start()
        deadline = time.monotonic() + timeout
        self._wait(f"volume server {i}", deadline, lambda: self._http_ok(volume.port, "/status"))
        self.wait_for_volume_servers(deadline)

    def kill_gateway(self, i: int) -> None:
        self.gateways[i].kill()

    def restart_gateway(self, i: int, timeout: float = 60.0) -> None:
        """Kill (if running) and start gateway ``i`` on its port; wait until it answers a signed request."""
        self.gateways[i].kill()
        self.gateways[i].start()
        self.wait_for_gateway(i, time.monotonic() + timeout)

    def failed_reads(self, gateway: int, volume: int) -> int:
        """How many reads gateway ``gateway`` logged as failed on volume server ``volume``."""
        needle = f"read http://127.0.0.1:{self.volumes[volume].port}/"
        text = self.gateways[gateway].log_path.read_text(errors="replace")
        return sum(needle in line and " failed" in line for line in text.splitlines())

    def volume_ids(self) -> list[set[int]]:
        """The ids of the volumes each volume server holds, as the master knows them."""
        centers = self._master_json("/vol/status")["Volumes"]["DataCenters"]
        held = {url: {v["Id"] for v in volumes} for racks in centers.values() for rack in racks.values()
                for url, volumes in rack.items()}
        return [held.get(f"127.0.0.1:{v.port}", set()) for v in self.volumes]

    def chunk_volumes(self, key: str) -> list[int]:
        """The volume id of each chunk of object ``key`` in the bucket, from the filer's metadata."""
        path = urllib.parse.quote(f"/buckets/{self.bucket}/{key}")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.filer.port}{path}?metadata=true", timeout=5) as response:
            entry = json.loads(response.read())
        return [int(chunk["file_id"].split(",")[0]) for chunk in entry.get("chunks") or []]

    # -- waiting ---------------------------------------------------------------------------
    def wait_for_volume_servers(self, deadline: float) -> None:
        """Until the master lists every running volume server."""
        wanted = {f"127.0.0.1:{v.port}" for v in self.volumes if v.running}
        self._wait(f"the master to list volume servers {sorted(wanted)}", deadline,
                   lambda: wanted <= self.registered_volume_servers())

    def registered_volume_servers(self) -> set[str]:
        topology = self._master_json("/dir/status").get("Topology", {})
        return {node["Url"] for dc in topology.get("DataCenters") or [] for rack in dc.get("Racks") or []
                for node in rack.get("DataNodes") or []}

    def wait_for_gateway(self, i: int, deadline: float) -> None:
        probe = self.client(i, retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5)
        self._wait(f"gateway {i}", deadline, lambda: probe.list_buckets() is not None)

    def _wait(self, what: str, deadline: float, ready: Callable[[], Any]) -> None:
        """Poll ``ready`` (exceptions count as not yet) until it is truthy; fail with every log's tail."""
        error: Exception | None = None
        while time.monotonic() < deadline:
            dead = [p for p in self.processes if p.proc is not None and p.proc.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0].name} exited while waiting for {what}:\n{self.log_tails()}")
            try:
                if ready():
                    return
            except Exception as exc:  # not up yet
                error = exc
            time.sleep(0.2)
        raise RuntimeError(f"SeaweedFS cluster: gave up waiting for {what} ({error!r}):\n{self.log_tails()}")

    def log_tails(self, lines: int = 12) -> str:
        return "\n".join(p.log_tail(lines) for p in self.processes)

    def _master_json(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.master.port}{path}", timeout=2) as response:
            return json.loads(response.read())

    @staticmethod
    def _http_ok(port: int, path: str) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status == 200

    def _create_bucket(self) -> bool:
        client = self.client(0, retries={"max_attempts": 1}, read_timeout=10)
        try:
            client.create_bucket(Bucket=self.bucket)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        return True

    def _round_trip(self) -> bool:
        """Write through each gateway, read back through the other (volumes may still be growing)."""
        clients = [self.client(i, retries={"max_attempts": 1}, read_timeout=10) for i in range(len(self.gateways))]
        for i, client in enumerate(clients):
            key, body = f"_cluster-probe/{i}", secrets.token_bytes(64 * 1024)
            client.put_object(Bucket=self.bucket, Key=key, Body=body)
            other = clients[(i + 1) % len(clients)]
            if other.get_object(Bucket=self.bucket, Key=key)["Body"].read() != body:
                return False
            client.delete_object(Bucket=self.bucket, Key=key)
        return True
