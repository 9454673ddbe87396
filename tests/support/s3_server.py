"""A real S3 API on loopback for tests: moto's server in a process of its own.

``MotoServer.start()`` runs ``moto_server -H 127.0.0.1 -p <free port>`` (in its own process
group, so ``stop()`` takes it down with anything it started) and waits until it answers.
Requests are counted server-side with moto's recorder (``/moto-api/recorder/...``), which
appends every request the server handles to a JSON-lines file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> tuple[int, socket.socket]:
    """A loopback port that refuses connections, and the socket that holds it.

    The socket is bound but never listens, so connecting is refused at once and no other
    process can take the port while the socket is open. Close it when done.
    """
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return int(s.getsockname()[1]), s


def silent_port() -> tuple[int, socket.socket]:
    """A loopback port that accepts connections (into the kernel's backlog) and never answers.

    Like a store behind a black hole: a client waits for its read timeout. Close the socket when done.
    """
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return int(s.getsockname()[1]), s


def no_aws_credentials_env() -> dict[str, str]:
    """Environment changes under which botocore finds no credentials and probes nothing."""
    missing = "/nonexistent/flyte-tests-aws"
    return {
        "AWS_SHARED_CREDENTIALS_FILE": f"{missing}/credentials",
        "AWS_CONFIG_FILE": f"{missing}/config",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@dataclass
class MotoServer:
    """moto's S3 server on 127.0.0.1; ``endpoint`` is its URL once started."""

    workdir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    recording: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.recording = self.workdir / "moto_recording.jsonl"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> MotoServer:
        exe = Path(sys.executable).with_name("moto_server")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["MOTO_RECORDER_FILEPATH"] = str(self.recording)
        last = ""
        for _attempt in range(3):  # a free port can be taken between probing and binding
            self.port = free_port()
            log = (self.workdir / "moto_server.log").open("ab")
            self.process = subprocess.Popen(
                [str(exe), "-H", "127.0.0.1", "-p", str(self.port)], cwd=self.workdir, env=env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
            log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2) as r:
                        if r.status == 200:
                            return self
                except (urllib.error.URLError, OSError) as exc:
                    last = str(exc)
                time.sleep(0.2)
            self.stop()
        raise RuntimeError(f"moto_server did not start on 127.0.0.1 ({last}); see {self.workdir}/moto_server.log")

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    # -- helpers ------------------------------------------------------------------------

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, region_name=REGION,
        )

    def connection_json(self, endpoint: str | None = None, **extra: Any) -> str:
        """An Airflow ``aws`` connection for this server, as ``AIRFLOW_CONN_<ID>`` JSON."""
        return json.dumps({
            "conn_type": "aws", "login": ACCESS_KEY, "password": SECRET_KEY,
            "extra": {"endpoint_url": endpoint or self.endpoint, "region_name": REGION, **extra},
        })

    def _post(self, action: str) -> None:
        req = urllib.request.Request(f"{self.endpoint}/moto-api/recorder/{action}", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def start_recording(self) -> None:
        """Forget recorded requests and record from now on."""
        self._post("reset-recording")
        self._post("start-recording")

    def stop_recording(self) -> None:
        self._post("stop-recording")

    def requests(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request recorded since :meth:`start_recording`."""
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/recorder/download-recording", timeout=10) as r:
            text = r.read().decode("utf-8")
        out = []
        for line in text.splitlines():
            if line.strip():
                entry = json.loads(line)
                out.append((entry["method"], urlsplit(entry["url"]).path))
        return out
