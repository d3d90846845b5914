"""The worker's RocksDB stores stay within one memory budget (streams.store_policy)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from streams.bootstrap import build_worker
from streams.clock import SystemClock
from streams.settings import ConfigError, Settings
from streams.store_policy import MIB, MIN_PARTITION_SHARE_MB, rocksdb_options


def _per_partition(options: dict[str, int]) -> int:
    return (options["write_buffer_size"] * options["max_write_buffer_number"]
            + options["block_cache_size"] + options["block_cache_compressed_size"])


def test_the_budget_is_split_over_the_partitions_and_never_exceeded_when_one_worker_owns_them_all() -> None:
    for budget, partitions in ((256, 4), (256, 12), (1024, 50), (64, 4)):
        options = rocksdb_options(budget, partitions)
        per_partition = (options["write_buffer_size"] * options["max_write_buffer_number"]
                         + options["block_cache_size"] + options["block_cache_compressed_size"])
        assert per_partition * partitions <= budget * MIB or per_partition == 2 * 4 * MIB + 8 * MIB
        assert options["block_cache_size"] < 2 * 1024 * MIB  # not Faust's 2 GiB per partition


def test_every_budget_the_settings_accept_is_kept_when_one_worker_owns_every_partition() -> None:
    assert MIN_PARTITION_SHARE_MB == 16
    for partitions in (1, 2, 3, 4, 12, 16, 24, 50, 64):
        floor = max(32, MIN_PARTITION_SHARE_MB * partitions)
        for budget in (floor, floor + 1, floor + 7, 2 * floor + 3, 256, 1024):
            if budget < floor:
                continue
            assert _per_partition(rocksdb_options(budget, partitions)) * partitions <= budget * MIB, (
                budget, partitions)


@pytest.mark.parametrize(("budget", "partitions"), [(256, 24), (32, 4), (63, 4), (384 - 1, 24)])
def test_a_budget_below_16_mib_per_partition_is_refused_naming_both_settings(
        monkeypatch: pytest.MonkeyPatch, budget: int, partitions: int) -> None:
    # 256 MiB over 24 partitions would give each partition its 16 MiB floors: 384 MiB in all.
    assert _per_partition(rocksdb_options(budget, partitions)) * partitions > budget * MIB
    monkeypatch.setenv("DFDG_DEV_MODE", "1")
    monkeypatch.setenv("DFDG_ROCKSDB_MEMORY_MB", str(budget))
    monkeypatch.setenv("DFDG_PARTITIONS", str(partitions))
    with pytest.raises(ConfigError, match=r"DFDG_ROCKSDB_MEMORY_MB.*DFDG_PARTITIONS") as refused:
        Settings.from_env()
    assert f"{16 * partitions}" in str(refused.value)


@pytest.mark.parametrize(("budget", "partitions"), [(384, 24), (256, 16), (64, 4), (32, 1), (256, 4)])
def test_a_budget_of_16_mib_per_partition_or_more_is_accepted(
        monkeypatch: pytest.MonkeyPatch, budget: int, partitions: int) -> None:
    monkeypatch.setenv("DFDG_DEV_MODE", "1")
    monkeypatch.setenv("DFDG_ROCKSDB_MEMORY_MB", str(budget))
    monkeypatch.setenv("DFDG_PARTITIONS", str(partitions))
    settings = Settings.from_env()
    assert (settings.rocksdb_memory_mb, settings.partitions) == (budget, partitions)
    assert _per_partition(rocksdb_options(budget, partitions)) * partitions <= budget * MIB


def test_a_budget_below_the_floor_is_refused_with_the_setting_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DFDG_DEV_MODE", "1")
    monkeypatch.setenv("DFDG_ROCKSDB_MEMORY_MB", "8")
    with pytest.raises(ConfigError, match="DFDG_ROCKSDB_MEMORY_MB"):
        Settings.from_env()


def test_the_worker_opens_its_citizens_table_with_the_budgets_options(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    monkeypatch.setenv("DFDG_DEV_MODE", "1")
    monkeypatch.setenv("DFDG_ROCKSDB_MEMORY_MB", "128")
    settings = replace(Settings.from_env(), data_dir=tmp_path, store="rocksdb://", partitions=8)
    worker = build_worker(settings, SystemClock())
    store = worker.app.tables["citizens"].data
    wanted = rocksdb_options(128, 8)
    assert store.rocksdb_options.block_cache_size == wanted["block_cache_size"] == 8 * MIB
    assert store.rocksdb_options.write_buffer_size == wanted["write_buffer_size"]
    assert store.rocksdb_options.max_write_buffer_number == 2


@pytest.mark.parametrize(("name", "value"), [
    ("DFDG_KEY_CACHE_CITIZENS", "0"), ("DFDG_KEY_CACHE_CITIZENS", "-5"), ("DFDG_KEY_CACHE_CITIZENS", "many"),
    ("DFDG_KEY_CACHE_CITIZENS", ""), ("DFDG_STANDBY_REPLICAS", "3"), ("DFDG_STANDBY_REPLICAS", "-1"),
    ("DFDG_STANDBY_REPLICAS", "one")])
def test_a_key_cache_of_no_citizens_or_standbys_outside_0_to_2_are_refused_with_the_setting_named(
        monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv("DFDG_DEV_MODE", "1")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        Settings.from_env()


def test_the_worker_keeps_its_keys_in_a_copy_of_its_own_and_asks_faust_for_the_standbys(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DFDG_DEV_MODE", "1")
    monkeypatch.setenv("DFDG_STANDBY_REPLICAS", "1")
    settings = replace(Settings.from_env(), data_dir=tmp_path, store="rocksdb://", partitions=2)
    worker = build_worker(settings, SystemClock())
    assert worker.app.conf.table_standby_replicas == 1
    (copy,) = (tmp_path / "data-keys-all").iterdir()  # the key shelf's copy, made at build
    assert (copy / ".lock").exists()
