from __future__ import annotations

import json
from pathlib import Path

import pytest

from dfdg.cmd_subscribers import format_table, register
from processors.routing import InvalidSubscriberId
from processors.subscribers import Registry, RegistryError, Subscriber
from sinks import registry_store

SEED = Path(__file__).resolve().parents[2] / "config" / "subscribers.json"


def test_seed_registry_loads_and_holds_the_expected_subscribers() -> None:
    reg = registry_store.load(SEED)
    expected = {f"{r}:{m}" for r in ("jobcenter", "benefits") for m in ("101", "147", "461", "751", "851")}
    expected |= {"akasse:5", "akasse:10", "akasse:24", "archive:rigsarkivet", "statistics:star"}
    assert set(reg) == expected
    assert reg["akasse:5"].topic == "dfdg.notify.akasse.5"
    assert "whsec_" not in SEED.read_text()


def test_save_then_load_round_trips_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "subscribers.json"
    reg = Registry().add("jobcenter:101", "https://jc.example/hook", "env:JC101_SECRET").add("akasse:5")
    registry_store.save(reg, path)
    assert registry_store.load(path) == reg
    assert [p.name for p in path.parent.iterdir() if p.suffix == ".tmp"] == []
    assert json.loads(path.read_text())["subscribers"][1]["webhook_secret_ref"] == "env:JC101_SECRET"


def test_path_comes_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(registry_store.ENV_VAR, str(tmp_path / "x.json"))
    registry_store.save(Registry().add("statistics:star"))
    assert (tmp_path / "x.json").exists()
    assert list(registry_store.load()) == ["statistics:star"]
    assert registry_store.load(tmp_path / "missing.json") == Registry()


def test_suspend_resume_disable_return_new_registries() -> None:
    reg = Registry().add("akasse:5")
    suspended = reg.suspend("akasse:5")
    assert reg["akasse:5"].state == "active" and suspended["akasse:5"].state == "suspended"
    assert suspended.active() == ()
    assert suspended.resume("akasse:5")["akasse:5"].state == "active"
    assert reg.disable("akasse:5").resume("akasse:5").active() == (reg["akasse:5"],)


@pytest.mark.parametrize("change", [
    lambda r: r.add("akasse:5"),  # duplicate
    lambda r: r.suspend("akasse:99"),  # unknown
    lambda r: r.add("jobcenter:101", "https://x/hook"),  # webhook without secret ref
    lambda r: r.add("jobcenter:101", "https://x/hook", "whsec_abc"),  # the secret itself
    lambda r: r.add("jobcenter:101", "ftp://x/hook", "env:S"),
])
def test_invalid_registry_changes_are_refused(change: object) -> None:
    with pytest.raises(RegistryError):
        change(Registry().add("akasse:5"))  # type: ignore[operator]


def test_invalid_ids_and_topics_are_refused() -> None:
    with pytest.raises(InvalidSubscriberId):
        Registry().add("jobcenter:12")
    with pytest.raises(RegistryError):
        Subscriber("akasse:5", "dfdg.notify.akasse.6")


def test_cli_add_suspend_resume_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    monkeypatch.setenv(registry_store.ENV_VAR, str(tmp_path / "subs.json"))
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())

    def run(*argv: str) -> int:
        args = parser.parse_args(["subscribers", *argv])
        return int(args.func(args))

    assert run("add", "jobcenter:101", "--webhook", "https://jc.example/hook", "--secret-env", "JC_SECRET") == 0
    assert run("add", "akasse:5") == 0
    assert run("add", "akasse:5") == 2  # duplicate
    assert run("add", "jobcenter:101x") == 2
    assert run("suspend", "akasse:5") == 0
    reg = registry_store.load()
    assert reg["akasse:5"].state == "suspended"
    assert reg["jobcenter:101"].webhook_secret_ref == "env:JC_SECRET"
    assert run("resume", "akasse:5") == 0
    capsys.readouterr()
    assert run("list") == 0
    out = capsys.readouterr().out
    assert out == format_table(registry_store.load()) + "\n"
    assert "jobcenter:101  dfdg.notify.jobcenter.101  active  yes" in out
    assert "akasse:5       dfdg.notify.akasse.5       active  no" in out
