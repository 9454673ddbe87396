"""``python -m airflow_provider_flyte`` (the package's ``__main__``): its arguments and exit status."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

cli = importlib.import_module("airflow_provider_flyte.__main__")


@pytest.mark.parametrize("argv", [[], ["check"], ["check", "--conn-id", "k", "--timeout", "0"],
                                  ["check", "--conn-id", "k", "--role", "scheduler"]])
def test_bad_arguments_exit_2_naming_them(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: python -m airflow_provider_flyte" in err


def test_the_timeout_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["check", "--conn-id", "k", "--timeout", "soon"])
    assert "'soon' is not a positive number of seconds" in capsys.readouterr().err


def test_a_failed_check_exits_1_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path}")
    assert cli.main(["check", "--conn-id", "no_such_k8s"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("✗ connection 'no_such_k8s' cannot be loaded")
    assert out[1].startswith(f"✓ staging store file://{tmp_path} is writable")
    assert out[-1] == "1 check(s) failed: some tasks cannot run through 'no_such_k8s'"


def test_airflows_cli_gets_the_same_command() -> None:
    (group,) = cli.get_cli_commands()
    (command,) = group.subcommands
    assert (group.name, command.name, command.func) == ("flyte", "check", cli.airflow_check)
    assert [arg.flags for arg in command.args] == [flags for flags, _ in cli.OPTIONS]


def test_the_provider_info_names_it() -> None:
    from airflow_provider_flyte.get_provider_info import get_provider_info

    (path,) = get_provider_info()["cli"]
    module, _, name = path.rpartition(".")
    assert getattr(importlib.import_module(module), name) is cli.get_cli_commands


def test_the_engines_are_a_comma_separated_list(capsys: pytest.CaptureFixture[str]) -> None:
    args = cli.parser().parse_args(["check", "--conn-id", "k", "--engine", "Spark, ray"])
    assert args.engines == ["spark", "ray"]
    assert cli.parser().parse_args(["check", "--conn-id", "k"]).engines is None
    with pytest.raises(SystemExit) as info:
        cli.main(["check", "--conn-id", "k", "--engine", "spark,flink"])
    assert info.value.code == 2
    assert "--engine 'spark,flink': flink is not one of dask,pytorch,ray,spark" in capsys.readouterr().err
