"""The simulated node's network: one private network namespace for all simulated pods, with its own ``/etc/hosts``.

Kubernetes gives every pod its own IP and resolves Service names through cluster DNS. Here:

- A holder process (``unshare --net --mount``, loopback up, a private ``/etc/hosts`` bind-mounted
  over the real one, then ``sleep``) owns a network namespace whose only interface is ``lo``.
  Every container process joins it (``nsenter --net --mount``), so whatever a process binds,
  ``0.0.0.0`` included, is reachable only inside that namespace: nothing a simulated pod runs can
  listen beyond loopback, and fixed ports (6379, 8265, 8786, 23456) do not collide with the
  test machine's.
- Each pod gets its own loopback address ``127.0.x.y`` as ``status.podIP``; 127.0.0.0/8 is all
  local on ``lo``, so a process can bind its pod's address and any pod can reach it.
- The namespace's ``/etc/hosts`` maps every pod name (its hostname) and every Service name
  (``<svc>``, ``<svc>.<ns>``, ``<svc>.<ns>.svc``, ``<svc>.<ns>.svc.cluster.local``) to the IP of a
  ready pod the Service selects, so the names the real operators inject
  (``DASK_SCHEDULER_ADDRESS=tcp://<job>-scheduler.<ns>.svc.cluster.local:8786``,
  ``MASTER_ADDR=<job>-master-0``, KubeRay's ``<cluster>-head-svc.<ns>.svc.cluster.local``)
  resolve unchanged. The file is rewritten in place (the bind mount follows the inode).
- Each container runs in PID, mount and UTS namespaces of its own (``unshare --pid --fork
  --kill-child --mount-proc --uts``, hostname = pod name, its own ``/proc``, which PySpark's
  worker daemon needs): killing the container's init kills every process it started, daemons
  included, as a container runtime does. The file system is the machine's (no image layers).

Needs ``unshare``/``nsenter`` (util-linux) and the privilege to create namespaces (root here).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path


class SandboxUnavailable(RuntimeError):
    """Namespaces cannot be created here: the simulator cannot run pods safely."""


class PodNetwork:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.hosts_path = directory / "hosts"
        self._holder: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._next = 2  # 127.0.0.1 is the node itself
        self.netns_id = ""  # "net:[inode]" of the pod network

    def start(self) -> None:
        for tool in ("unshare", "nsenter", "ip"):
            if shutil.which(tool) is None:
                raise SandboxUnavailable(f"{tool} is not installed")
        self.hosts_path.write_text("127.0.0.1 localhost\n")
        # the holder goes when the test process does, even if it is killed without cleaning up
        script = ('ip link set lo up && mount --bind "$0" /etc/hosts && echo ready && '
                  'while kill -0 "$1" 2>/dev/null; do sleep 1; done')
        self._holder = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", script, str(self.hosts_path),
             str(os.getpid())],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        assert self._holder.stdout is not None
        line = self._holder.stdout.readline()
        with contextlib.suppress(OSError):
            self.netns_id = os.readlink(f"/proc/{self._holder.pid}/ns/net")
        if line.strip() != b"ready":
            rest = line + (self._holder.stdout.read() if self._holder.poll() is not None else b"")
            self.stop()
            raise SandboxUnavailable(f"cannot create the pod network namespace: {rest.decode(errors='replace')}")

    @property
    def holder_pid(self) -> int:
        assert self._holder is not None
        return self._holder.pid

    def stop(self) -> None:
        if self._holder is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._holder.pid, signal.SIGKILL)
            self._holder.wait(5)
            if self._holder.stdout is not None:
                self._holder.stdout.close()
            self._holder = None

    def allocate_ip(self) -> str:
        with self._lock:
            n = self._next
            self._next += 1
        if n >= 254 * 256:
            raise RuntimeError("out of pod IPs")
        return f"127.0.{n // 254}.{n % 254 + 1}" if n >= 254 else f"127.0.0.{n}"

    def set_hosts(self, entries: dict[str, str]) -> None:
        """Rewrite ``/etc/hosts`` of the namespace (in place): ``{name: ip}``."""
        by_ip: dict[str, list[str]] = {}
        for name, ip in sorted(entries.items()):
            by_ip.setdefault(ip, []).append(name)
        text = "127.0.0.1 localhost\n" + "".join(f"{ip} {' '.join(names)}\n" for ip, names in sorted(by_ip.items()))
        with self._lock, open(self.hosts_path, "r+") as fh:
            if fh.read() != text:
                fh.seek(0)
                fh.write(text)
                fh.truncate()

    def wrap(self, argv: list[str], *, cwd: str, hostname: str) -> list[str]:
        """``argv`` as a container: in the pod network, in PID and UTS namespaces of its own."""
        pid = self.holder_pid
        unshare = shutil.which("unshare") or "unshare"
        setpriv = shutil.which("setpriv")
        # --pdeathsig: the container dies with the thread that started it (the simulator's loop), so a
        # test process killed without cleaning up leaves nothing behind
        die = [setpriv, "--pdeathsig", "KILL"] if setpriv else []
        return ["nsenter", f"--net=/proc/{pid}/ns/net", f"--mount=/proc/{pid}/ns/mnt", f"--wd={cwd}", "--", *die,
                unshare, "--pid", "--fork", "--kill-child", "--mount-proc", "--uts", "--",
                "/bin/sh", "-c", 'hostname "$0" 2>/dev/null; "$@"; exit $?', hostname, *argv]

    def run(self, argv: list[str], *, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        """Run a short helper command in the pod network (the operators' HTTP calls to pods)."""
        pid = self.holder_pid
        return subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", f"--mount=/proc/{pid}/ns/mnt", "--", *argv],
                              capture_output=True, text=True, timeout=timeout, start_new_session=True)


_PROBER = r"""
import json, sys, urllib.request, urllib.error
for line in sys.stdin:
    req = json.loads(line)
    try:
        r = urllib.request.Request(req["url"], data=req.get("body", "").encode() or None, method=req["method"],
                                   headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(r, timeout=req.get("timeout", 5)) as resp:
            out = {"status": resp.status, "body": resp.read().decode(errors="replace")}
    except urllib.error.HTTPError as exc:
        out = {"status": exc.code, "body": exc.read().decode(errors="replace")}
    except Exception as exc:
        out = {"status": 0, "body": repr(exc)}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
"""


class HttpProber:
    """A long-lived helper process inside the pod network that makes HTTP requests for the operators
    (KubeRay polls the Ray dashboard; nothing in the test process can reach the pod network)."""

    def __init__(self, network: PodNetwork, python: str) -> None:
        self._network, self._python = network, python
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def request(self, method: str, url: str, body: str = "", timeout: float = 5) -> tuple[int, str]:
        import json

        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                pid = self._network.holder_pid
                self._proc = subprocess.Popen(
                    ["nsenter", f"--net=/proc/{pid}/ns/net", f"--mount=/proc/{pid}/ns/mnt", "--",
                     self._python, "-u", "-c", _PROBER],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
            assert self._proc.stdin is not None and self._proc.stdout is not None
            self._proc.stdin.write(json.dumps({"method": method, "url": url, "body": body, "timeout": timeout}) + "\n")
            self._proc.stdin.flush()
            answer = json.loads(self._proc.stdout.readline() or '{"status": 0, "body": "prober gone"}')
            return int(answer["status"]), str(answer["body"])

    def stop(self) -> None:
        with self._lock:
            if self._proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(5)
                for stream in (self._proc.stdin, self._proc.stdout):
                    if stream is not None:
                        with contextlib.suppress(OSError):
                            stream.close()
                self._proc = None
