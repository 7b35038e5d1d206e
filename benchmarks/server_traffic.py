"""What the SeaweedFS S3 gateway saw: requests by type and body bytes in and out, read from
its Prometheus counters (``SeaweedServer(metrics=True)``).

Why the server counts and not the client: the registry sends its requests from Rust (obstore),
where no Python hook sees a multipart upload's parts, a coalesced ranged read or a retry, and a
counting proxy in the data path would slow every request of whichever side it fronts. The
server's counters cost the measured processes nothing and count registry and boto3 alike.
Operations run one at a time, so the difference of two readings is one operation's traffic.

Weed 4.48 counts a HEAD as a GET (the caller may split them with the client's own count), and
a counter may lag its answer by a moment, so a reading waits until no request is in flight.
"""
from __future__ import annotations

import re
import time
import urllib.request
from dataclasses import dataclass, field

_SAMPLE = re.compile(r"^(SeaweedFS_s3_\w+)\{([^}]*)\}\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class Traffic:
    """Counts since the server started, or (a difference) during one operation."""

    requests: dict[str, int] = field(default_factory=dict)
    """By type as weed names them: GET (HEADs included), PUT (objects and parts), POST
    (multipart create and complete), LIST, DELETE; every status code counts."""
    up: int = 0
    """Request body bytes the server received (objects and parts)."""
    down: int = 0
    """Response body bytes the server sent."""

    def __sub__(self, before: Traffic) -> Traffic:
        kinds = self.requests.keys() | before.requests.keys()
        requests = {k: self.requests.get(k, 0) - before.requests.get(k, 0) for k in sorted(kinds)}
        return Traffic({k: n for k, n in requests.items() if n}, self.up - before.up, self.down - before.down)


class TrafficCounter:
    """Reads a weed metrics page (``SeaweedServer.metrics_url``)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def read(self, settle: float = 2.0) -> Traffic:
        """The counters, once no request is in flight (or after ``settle`` seconds)."""
        deadline = time.monotonic() + settle
        while True:
            traffic, in_flight = self._scrape()
            if not in_flight or time.monotonic() > deadline:
                return traffic
            time.sleep(0.02)

    def _scrape(self) -> tuple[Traffic, int]:
        with urllib.request.urlopen(self.url, timeout=10) as answer:
            text = answer.read().decode()
        traffic, in_flight = Traffic(), 0
        for line in text.splitlines():
            found = _SAMPLE.match(line)
            if not found:
                continue
            name, labels, value = found.group(1), dict(_LABEL.findall(found.group(2))), int(float(found.group(3)))
            if name == "SeaweedFS_s3_request_total":
                kind = labels.get("type", "?")
                traffic.requests[kind] = traffic.requests.get(kind, 0) + value
            elif name == "SeaweedFS_s3_bucket_traffic_received_bytes_total":
                traffic.up += value
            elif name == "SeaweedFS_s3_bucket_traffic_sent_bytes_total":
                traffic.down += value
            elif name == "SeaweedFS_s3_in_flight_requests":
                in_flight += value
        return traffic, in_flight
