"""The worker's RocksDB stores stay within one memory budget (streams.store_policy)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from streams.bootstrap import build_worker
from streams.clock import SystemClock
from streams.settings import ConfigError, Settings
from streams.store_policy import MIB, rocksdb_options


def test_the_budget_is_split_over_the_partitions_and_never_exceeded_when_one_worker_owns_them_all() -> None:
    for budget, partitions in ((256, 4), (256, 12), (1024, 50), (64, 4)):
        options = rocksdb_options(budget, partitions)
        per_partition = (options["write_buffer_size"] * options["max_write_buffer_number"]
                         + options["block_cache_size"] + options["block_cache_compressed_size"])
        assert per_partition * partitions <= budget * MIB or per_partition == 2 * 4 * MIB + 8 * MIB
        assert options["block_cache_size"] < 2 * 1024 * MIB  # not Faust's 2 GiB per partition


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
