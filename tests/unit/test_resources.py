"""Quantities as Flyte writes them: CPUs, memory sizes and GPU requests."""

from __future__ import annotations

import pytest

from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.resources import GPU, Device, cpu_count, memory_bytes, parse_gpu


@pytest.mark.parametrize(("value", "cpus"), [(2, 2.0), ("1.5", 1.5), ("500m", 0.5), (("250m", "1"), 0.25)])
def test_cpu_quantities(value, cpus) -> None:
    assert cpu_count(value) == cpus


@pytest.mark.parametrize(("value", "problem"), [("two", "not a CPU quantity"), ("nan", "not a finite CPU quantity"),
                                                (-1, "cpu must be greater than or equal to 0")])
def test_bad_cpu_quantities_name_the_field(value, problem) -> None:
    with pytest.raises(FlyteConfigError, match=rf"^Resources.cpu: {problem}"):
        cpu_count(value, field="Resources.cpu")


@pytest.mark.parametrize(("value", "size"), [("4Gi", 4 * 1024**3), ("512Mi", 512 * 1024**2), ("2G", 2 * 1000**3),
                                             ("1024", 1024), (("1Gi", "2Gi"), 1024**3)])
def test_memory_quantities(value, size) -> None:
    assert memory_bytes(value) == size


def test_a_bad_memory_quantity_is_refused() -> None:
    with pytest.raises(FlyteConfigError, match=r"^memory: not a memory quantity"):
        memory_bytes("4 gigs")


def test_gpu_requests() -> None:
    assert parse_gpu(2).quantity == 2
    assert parse_gpu(0).quantity == 0
    a100 = parse_gpu("A100:2")
    assert (a100.quantity, a100.device) == (2, "A100")
    assert GPU("A100", 2) == a100
    device = Device(quantity=1)
    assert parse_gpu(device) is device
    for bad in (True, -1, "A100:0", "Z80:1", 1.5):
        with pytest.raises(FlyteConfigError):
            parse_gpu(bad)
