"""Where the key topic's rows are kept (``streams.key_shelf``, issue 15: the data keys cached
with a bound, not all held): wrapped in a dict or the worker's own RocksDB, a bounded number of
citizens' keys opened, shredding reaching the shelf, a wrong master key refused on reading."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest

from sinks.crypto import CryptoError, DataKey, MasterKey
from streams.key_shelf import InMemoryWrappedKeys, OpenedKeys, RocksWrappedKeys, decode_entries, encode_entries
from streams.key_topic import KeysUnavailable, KeyTopic
from streams.keystore import KeyStore

MASTER = MasterKey(MasterKey.DEV_KEY)
MIB = 1024 * 1024


@dataclass
class _Row:
    key: bytes
    value: bytes | None
    partition: int = 0
    offset: int = 0


def _row(citizen: str, key: DataKey, master: MasterKey = MASTER) -> _Row:
    return _Row(f"{citizen}:{key.key_id.hex()}".encode(), master.wrap(key, citizen.encode()))


def _rocks(path: Path) -> RocksWrappedKeys:
    return RocksWrappedKeys(path, 4 * MIB, 8 * MIB)


def test_entries_round_trip_with_wrapped_keys_of_any_length() -> None:
    entries = [(b"a" * 16, b"x" * 76), (b"b" * 16, b""), (b"c" * 16, b"y" * 300)]
    assert decode_entries(encode_entries(entries)) == entries
    assert decode_entries(b"") == []
    with pytest.raises(ValueError, match="16 bytes"):
        encode_entries([(b"short", b"x")])


@pytest.mark.parametrize("shelf", ["memory", "rocksdb"])
def test_a_shelf_holds_replaces_and_removes_rows_and_counts_citizens(shelf: str, tmp_path: Path) -> None:
    keys = InMemoryWrappedKeys() if shelf == "memory" else _rocks(tmp_path / "keys")
    keys.write({"c-1": b"one", "c-2": b"two"})
    keys.write({"c-1": b"uno", "c-3": b""})  # a citizen never held, removed: no change
    assert (keys.get("c-1"), keys.get("c-2"), keys.get("c-3"), len(keys)) == (b"uno", b"two", b"", 2)
    keys.write({"c-2": b""})
    keys.mark_erased(["c-2"])
    assert keys.get("c-2") == b"" and keys.is_erased("c-2") and not keys.is_erased("c-1") and len(keys) == 1
    keys.close()


def test_each_rocksdb_copy_is_new_and_the_copies_of_ended_processes_are_removed(tmp_path: Path) -> None:
    """Rebuilt from the topic at every start: a key shredded while the worker was down is never
    found in what an earlier run left. A copy still in use (a process on the same data directory
    that has not ended yet) is left alone; one nobody holds (its process ended) is removed."""
    folder = tmp_path / "keys"
    live = _rocks(folder)
    live.write({"c-1": b"one"})
    crashed = _rocks(folder)
    crashed.write({"c-1": b"one"})
    crashed.mark_erased(["c-2"])
    crashed._db.close()
    crashed._lock.close()  # as a process that ended leaves it: its lock released, its files there
    (folder / "left-over-file").write_bytes(b"x")
    again = _rocks(folder)
    assert again.get("c-1") == b"" and not again.is_erased("c-2") and len(again) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted([live.path.name, again.path.name])
    assert live.get("c-1") == b"one"  # the other process's copy still works
    again.close()
    again.close()  # twice: harmless
    assert not again.path.exists()
    live.close()


def test_opened_keys_keep_the_citizens_used_last_within_their_bound() -> None:
    opened = OpenedKeys(2)
    opened.put("a", b"1")
    opened.put("b", b"2")
    assert opened.get("a") == b"1"  # used: now the most recent
    opened.put("c", b"3")
    assert (opened.get("b"), opened.get("a"), opened.get("c"), len(opened)) == (None, b"1", b"3", 2)
    with pytest.raises(ValueError):
        OpenedKeys(0)


def _counting_topic(shelf: InMemoryWrappedKeys | RocksWrappedKeys, bound: int) -> tuple[KeyTopic, list[str]]:
    opened: list[str] = []

    def unwrap(citizen: str, wrapped: bytes) -> DataKey:
        opened.append(citizen)
        return MASTER.unwrap(wrapped, citizen.encode())

    return KeyTopic("unused:9092", "keys", unwrap, shelf, opened=bound), opened


@pytest.mark.parametrize("shelf", ["memory", "rocksdb"])
def test_every_key_is_found_while_only_the_bound_is_held_opened(shelf: str, tmp_path: Path) -> None:
    topic, unwrapped = _counting_topic(InMemoryWrappedKeys() if shelf == "memory" else _rocks(tmp_path / "k"), 3)
    made = {f"c-{i}": DataKey.generate() for i in range(10)}
    topic._apply({"tp": [_row(c, k) for c, k in made.items()]})  # type: ignore[dict-item]
    assert unwrapped == ["c-0"]  # only the first row is opened on reading: the master key is checked
    for citizen, key in made.items():
        assert topic.known(citizen) == key and topic.all_for(citizen) == [key]
    assert len(topic._opened) == 3 and len(topic) == 10
    unwrapped.clear()
    assert topic.known("c-9") == made["c-9"] and unwrapped == []  # held opened: not unwrapped again
    assert topic.known("c-0") == made["c-0"] and unwrapped == ["c-0"]  # evicted: unwrapped once more
    # A row for a citizen held opened replaces what is held: the next use sees both keys.
    second = DataKey.generate()
    topic._apply({"tp": [_row("c-9", second)]})  # type: ignore[dict-item]
    assert sorted(topic.all_for("c-9"), key=lambda k: k.key_id) == sorted([made["c-9"], second],
                                                                          key=lambda k: k.key_id)
    topic._shelf.close()


@pytest.mark.parametrize("shelf", ["memory", "rocksdb"])
async def test_shredding_removes_the_key_from_the_shelf_and_the_opened_keys(shelf: str, tmp_path: Path) -> None:
    rows: list[tuple[str, bytes, bytes | None]] = []

    async def send(topic: str, row: bytes, value: bytes | None) -> None:
        rows.append((topic, row, value))

    wrapped_keys = InMemoryWrappedKeys() if shelf == "memory" else _rocks(tmp_path / "k")
    store = KeyStore("unused:9092", "keys", MASTER, send=send, shelf=wrapped_keys, opened=10)
    key = await store.key_for("c-1")
    assert store.known("c-1") == key and wrapped_keys.get("c-1")
    assert await store.shred("c-1") == 1
    assert store.known("c-1") is None and store.is_erased("c-1") and wrapped_keys.get("c-1") == b""
    assert await store.ensure(["c-1"]) == 0  # erased: no new key, ever (R7.3)
    # The key's row, its tombstone, the erased row: the topic says the same.
    assert rows[0][2] is not None and [r[2] for r in rows[1:]] == [None, b"erased"]
    wrapped_keys.close()


def test_a_topic_wrapped_with_another_master_key_is_refused_when_read(tmp_path: Path) -> None:
    other = MasterKey(bytes(32))
    topic, _ = _counting_topic(_rocks(tmp_path / "k"), 3)
    with pytest.raises(CryptoError):
        topic._apply({"tp": [_row("c-1", DataKey.generate(), other)]})  # type: ignore[dict-item]
    topic._shelf.close()


def test_a_row_that_does_not_unwrap_is_unavailable_not_shredded_and_a_malformed_name_is_skipped(
        tmp_path: Path) -> None:
    """Only the first row is opened on reading. A later row this master key cannot open is not a
    shredded key (that has no row): asking for it raises ``KeysUnavailable``, never None, so no
    tool calls the citizen deleted and no worker makes them a new key."""
    topic, _ = _counting_topic(_rocks(tmp_path / "k"), 3)
    good, bad = DataKey.generate(), DataKey.generate()
    topic._apply({"tp": [_row("c-1", good), _Row(b"c-2:abcd", b"x"),  # type: ignore[dict-item]
                         _row("c-3", bad, MasterKey(bytes(32)))]})
    assert topic.known("c-1") == good and topic.known("c-2") is None
    with pytest.raises(KeysUnavailable):
        topic.known("c-3")
    topic._shelf.close()


async def test_a_key_made_for_a_citizen_erased_while_its_row_was_on_its_way_is_tombstoned_not_kept(
        tmp_path: Path) -> None:
    """Another worker's saga erases the citizen while this one's new key row awaits its
    acknowledgement: the key is never used, and its row is tombstoned (R7.3)."""
    rows: list[tuple[str, bytes, bytes | None]] = []
    wrapped_keys = _rocks(tmp_path / "k")

    async def send(topic: str, row: bytes, value: bytes | None) -> None:
        rows.append((topic, row, value))
        if value is not None:
            wrapped_keys.mark_erased(["c-1"])  # the erased row, read while the key row was sent

    store = KeyStore("unused:9092", "keys", MASTER, send=send, shelf=wrapped_keys, opened=10)
    assert await store.ensure(["c-1", "c-2"]) == 1
    assert store.known("c-1") is None and store.is_erased("c-1") and store.known("c-2") is not None
    made = {row: value for _, row, value in rows}
    c1_rows = [row for row in made if row.startswith(b"c-1:")]
    assert len(c1_rows) == 1 and made[c1_rows[0]] is None  # its row, then its tombstone
    wrapped_keys.close()


@pytest.mark.parametrize("shelf", ["memory", "rocksdb"])
async def test_the_store_s_own_rows_read_back_leave_its_opened_keys_alone(shelf: str, tmp_path: Path) -> None:
    """A worker reads back every key row it writes. A row it keeps already changes nothing: the
    new citizen's key stays opened for the step that needs it next, not unwrapped a second time.
    A row that does change what is held (another process's key, a tombstone) still replaces it."""
    rows: list[_Row] = []

    async def send(topic: str, row: bytes, value: bytes | None) -> None:
        rows.append(_Row(row, value))

    wrapped_keys = InMemoryWrappedKeys() if shelf == "memory" else _rocks(tmp_path / "k")
    store = KeyStore("unused:9092", "keys", MASTER, send=send, shelf=wrapped_keys, opened=10)
    unwrapped: list[str] = []
    unwrap = store._unwrap
    store._unwrap = lambda citizen, wrapped: unwrapped.append(citizen) or unwrap(citizen, wrapped)  # type: ignore
    store._unwrap_checked = True  # as after the start's first row
    key = await store.key_for("c-1")
    store._apply({"tp": rows})  # type: ignore[dict-item]
    store._apply({"tp": [_Row(f"c-1:{DataKey.generate().key_id.hex()}".encode(), None)]})  # nothing held
    assert "c-1" in store._opened._opened and store.known("c-1") == key and unwrapped == []
    other = DataKey.generate()
    store._apply({"tp": [_row("c-1", other)]})  # another process's key for the same citizen
    assert sorted(store.all_for("c-1"), key=lambda k: k.key_id) == sorted([key, other], key=lambda k: k.key_id)
    assert unwrapped  # what is held changed: opened again from the shelf
    store._apply({"tp": [_Row(f"c-1:{other.key_id.hex()}".encode(), None)]})
    assert store.all_for("c-1") == [key]
    wrapped_keys.close()


def test_a_held_key_is_found_by_its_id_only_at_a_key_s_start() -> None:
    """``held_key`` and ``holds`` (what the step asks of every event handed over) find a key by
    its id among a citizen's keys; sixteen bytes of a secret that equal an id are not a key."""
    topic, _ = _counting_topic(InMemoryWrappedKeys(), 10)
    first, second = DataKey(b"\x01" * 16, b"\x02" * 16 + b"\x09" * 16), DataKey(b"\x09" * 16, b"\x03" * 32)
    topic._apply({"tp": [_row("c-1", first), _row("c-1", second)]})  # type: ignore[dict-item]
    for key in (first, second):
        assert topic.held_key("c-1", key.key_id) == key and topic.holds("c-1", key.key_id)
    topic._apply({"tp": [_Row(f"c-1:{second.key_id.hex()}".encode(), None)]})  # type: ignore[dict-item]
    assert topic.held_key("c-1", b"\x09" * 16) is None and not topic.holds("c-1", b"\x09" * 16)
    assert topic.holds("c-1", first.key_id) and not topic.holds("c-2", first.key_id)


async def test_two_steps_asking_at_once_for_a_new_citizen_s_key_make_one() -> None:
    """The door and a step (or two batches) ask for the same new citizen's key together: the one
    that waited for the other's rows to be acknowledged finds the key made, and makes none."""
    rows: list[bytes] = []

    async def send(topic: str, row: bytes, value: bytes | None) -> None:
        rows.append(row)
        await asyncio.sleep(0.01)  # the broker's acknowledgement: the other caller runs meanwhile

    store = KeyStore("unused:9092", "keys", MASTER, send=send, shelf=InMemoryWrappedKeys(), opened=10)
    made = await asyncio.gather(store.ensure(["c-1"]), store.ensure(["c-1", "c-2"]))
    assert sorted(made) == [1, 1] and len(rows) == 2 and sorted(r[:3] for r in rows) == [b"c-1", b"c-2"]
    assert len(store.all_for("c-1")) == 1


async def test_a_key_another_process_made_while_ours_was_on_its_way_is_kept_beside_ours() -> None:
    """Two doors make a key for the same new citizen at once: the other's row is read while ours
    waits for its acknowledgement. The shelf then holds both (each process picks the same one,
    the lowest id), and ours is not taken for the citizen's only key."""
    other = DataKey(b"\x00" * 16, b"\x07" * 32)  # the lowest id: the one every process picks
    store: KeyStore

    async def send(topic: str, row: bytes, value: bytes | None) -> None:
        store._apply({"tp": [_row("c-1", other)]})  # type: ignore[dict-item]
        await asyncio.sleep(0)

    store = KeyStore("unused:9092", "keys", MASTER, send=send, shelf=InMemoryWrappedKeys(), opened=10)
    assert await store.ensure(["c-1"]) == 1
    assert len(store.all_for("c-1")) == 2 and store.known("c-1") == other
    assert len(decode_entries(store._shelf.get("c-1"))) == 2
