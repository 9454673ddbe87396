"""Install the BUILT WHEEL into a separate virtualenv and run a smoke subset there.

    python scripts/ci/smoke.py --wheel dist/X.whl --python /path/to/python3.10 --mode floors
    python scripts/ci/smoke.py --wheel dist/X.whl --python /path/to/python3.13 --mode latest

``--mode floors`` pins apache-airflow, apache-airflow-providers-common-compat and every
engine of the ``spark``, ``ray`` and ``dask`` extras to the floor its ``>=`` gives in the
wheel's own metadata (so the floors tested are the floors published); ``--mode latest``
lets pip pick the newest releases. ``--pin NAME==VERSION`` overrides one pin (used to show
that the smoke fails below a floor). torch is not installed: the only CPU wheel of it on
these machines is ``torch==2.13.0`` for CPython 3.11, which the main suite runs (and which
is the ``pytorch`` extra's floor); any other torch is a multi-GB CUDA build.

The venv lives under ``--venv-root`` (default ``$TMPDIR/flyte-smoke-venvs``), keyed by the
Python version and the exact requirement set, so a rerun with the same pins only reinstalls
the wheel; pip's download cache is reused. The checks themselves are
``scripts/ci/smoke_check.py``, run with the venv's interpreter from a neutral directory.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SMOKE_EXTRAS = ("spark", "ray", "dask")
FLOOR_PINNED = {"apache-airflow", "apache-airflow-providers-common-compat", "pyspark", "ray", "dask", "distributed"}
_REQ = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*?)\s*(;\s*(.*))?$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_requirements(wheel: Path) -> tuple[str, list[tuple[str, str, str | None]]]:
    """(distribution name, [(name, specifier, marker)]) from the wheel's METADATA."""
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta_name).decode()
    dist = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Name:"))
    reqs = []
    for line in text.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        m = _REQ.match(line.split(":", 1)[1].strip())
        if m:
            reqs.append((canonical(m.group(1)), m.group(3), m.group(5)))
    return dist, reqs


def floor_pins(reqs: list[tuple[str, str, str | None]]) -> dict[str, str]:
    """name -> floor version for the pinned names, from ``>=X`` specifiers (base + smoke extras)."""
    wanted_markers = {None} | {f'extra == "{e}"' for e in SMOKE_EXTRAS} | {f"extra == '{e}'" for e in SMOKE_EXTRAS}
    pins: dict[str, str] = {}
    for name, spec, marker in reqs:
        if name not in FLOOR_PINNED or marker not in wanted_markers:
            continue
        m = re.search(r">=\s*([0-9][^,;\s]*)", spec)
        if not m:
            raise SystemExit(f"{name} has no >= floor in the wheel's metadata ({spec!r})")
        pins[name] = m.group(1)
    missing = FLOOR_PINNED - pins.keys()
    if missing:
        raise SystemExit(f"no floor found for {sorted(missing)} in the wheel's metadata")
    return pins


def run(cmd: list[str]) -> None:
    """Run ``cmd``, echoing its output without pip's noise about unused local index folders."""
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if not line.startswith("WARNING: Location "):
            print(line, end="", flush=True)
    if proc.wait() != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheel", required=True, type=Path)
    ap.add_argument("--python", required=True)
    ap.add_argument("--mode", choices=("floors", "latest"), required=True)
    ap.add_argument("--pin", action="append", default=[], help="NAME==VERSION, overrides a floor pin")
    ap.add_argument("--venv-root", type=Path, default=Path(tempfile.gettempdir()) / "flyte-smoke-venvs")
    ap.add_argument("--fresh", action="store_true", help="rebuild the venv even if one with the same key exists")
    ap.add_argument("--constraints", type=Path, default=HERE / "floor-constraints.txt",
                    help="extra pip constraints for --mode floors (Airflow's own constraints, in short)")
    args = ap.parse_args()

    wheel = args.wheel.resolve()
    dist, reqs = wheel_requirements(wheel)
    pins = floor_pins(reqs) if args.mode == "floors" else {}
    for item in args.pin:
        name, _, version = item.partition("==")
        pins[canonical(name)] = version
    pyver = subprocess.run([args.python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                           check=True, capture_output=True, text=True).stdout.strip()
    wanted = sorted(f"{n}{s};{m}" for n, s, m in reqs)
    extra_constraints = args.constraints.read_text() if args.mode == "floors" else ""
    stamp = time.strftime("%G-W%V") if args.mode == "latest" else ""  # latest: refreshed weekly
    key = hashlib.sha256(repr((pyver, args.mode, sorted(pins.items()), wanted, stamp, extra_constraints)).encode()).hexdigest()[:12]
    venv = args.venv_root / f"py{pyver}-{args.mode}-{key}"
    print(f"smoke: {dist} from {wheel.name}, Python {pyver}, mode {args.mode}, pins {pins or '(none)'}")
    print(f"smoke: venv {venv}", flush=True)
    py = venv / "bin" / "python"
    started = time.monotonic()
    ready = venv / ".ready"
    if args.fresh or not ready.exists():
        shutil.rmtree(venv, ignore_errors=True)
        args.venv_root.mkdir(parents=True, exist_ok=True)
        run([args.python, "-m", "venv", str(venv)])
        run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"])
        constraints = venv / "pins.txt"
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())) + extra_constraints)
        pinned = [f"{n}=={v}" for n, v in sorted(pins.items())]
        run([str(py), "-m", "pip", "install", "-q", f"{wheel}[{','.join(SMOKE_EXTRAS)}]", *pinned,
             "-c", str(constraints)])
        ready.write_text(key)
    else:
        print("smoke: reusing the venv; reinstalling the wheel only", flush=True)
        run([str(py), "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", str(wheel)])
    print(f"smoke: install took {time.monotonic() - started:.0f}s", flush=True)
    run([str(py), "-m", "pip", "check"])
    with tempfile.TemporaryDirectory(prefix="flyte-smoke-cwd-") as cwd:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHONPATH", "VIRTUAL_ENV"))}
        env.update({"SPARK_LOCAL_IP": "127.0.0.1", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1",
                    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
                    "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "PYSPARK_PYTHON": str(py)})
        checks = [str(py), str(HERE / "smoke_check.py"), "--expect-dist", dist]
        if pins:
            checks += ["--expect", *(f"{n}=={v}" for n, v in sorted(pins.items()))]
        print("+", " ".join(checks), flush=True)
        rc = subprocess.run(checks, cwd=cwd, env=env).returncode
    print(f"smoke: {'PASSED' if rc == 0 else 'FAILED'} (Python {pyver}, {args.mode}) "
          f"in {time.monotonic() - started:.0f}s", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
