"""Sharded stores through the binding (Store.open_sharded, since stop 40):
calls routed to a person's shard, erasures over several shards, what only a
shard's view does, backups and restores of the whole store, root-key
rotation."""
from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

import shredkv

from conftest import KEY, OTHER_KEY


@pytest.fixture
def sharded(tmp_path: Path) -> Iterator[shredkv.Store]:
    s = shredkv.Store.open_sharded(tmp_path / "sharded", key=KEY, shards=2, create=True,
                                   durability=shredkv.Durability.NO_SYNC)
    yield s
    s.close()


def people_in_each_shard(store: shredkv.Store, prefix: str = "p") -> List[Tuple[shredkv.PersonId, str]]:
    """One person a shard, created until each shard has one: (id, email)."""
    found: dict = {}
    for i in range(64):
        email = f"{prefix}{i}@example.org"
        person = store.create_person([("email", email)], {"name": f"{prefix}{i}"})
        found.setdefault(store.shard_of(person), (person, email))
        if len(found) == store.shard_count:
            break
    assert len(found) == store.shard_count
    return [found[i] for i in range(store.shard_count)]


def test_open_sharded_routes_reads_and_writes(sharded: shredkv.Store, tmp_path: Path) -> None:
    assert sharded.shard_count == 2
    (a, email_a), (b, email_b) = people_in_each_shard(sharded)
    # b lives in shard 1 only: its view reads b, shard 0's does not know b.
    with sharded.shard(1) as one, sharded.shard(0) as zero:
        assert one.get_profile(b)["name"] == email_b.split("@")[0]
        with pytest.raises(shredkv.NotFound):
            zero.get_profile(b)
    assert sharded.resolve(("email", email_b)) == b
    sharded.put(b, "notes", b"k", b"value")
    assert sharded.get(b, "notes", b"k") == b"value"
    assert sharded.get_profile(a)["name"] == email_a.split("@")[0]
    assert sharded.stats()["people"] >= 2
    assert sharded.verify().ok
    sharded.close()
    with pytest.raises(shredkv.InvalidArgument):
        shredkv.Store.open_sharded(tmp_path / "sharded", key=KEY, shards=3)
    with shredkv.Store.open_sharded(tmp_path / "sharded", key=KEY) as again:
        assert again.shard_count == 2
        assert again.get(b, "notes", b"k") == b"value"


def test_identifier_unique_across_shards(sharded: shredkv.Store) -> None:
    (a, email_a), (b, _) = people_in_each_shard(sharded)
    with pytest.raises(shredkv.AlreadyExists):
        sharded.link_identifier(b, ("email", email_a))


def test_erase_over_two_shards(sharded: shredkv.Store) -> None:
    (a, _), (b, email_b) = people_in_each_shard(sharded)
    receipt = sharded.erase([a, b], request_id="req-both", suppress=True)
    assert receipt.request_id == "req-both"
    assert receipt.people == 2
    assert receipt.key_epoch == 0 and receipt.audit_hash == ""  # a shard's own, not the whole's
    with pytest.raises(shredkv.Erased):
        sharded.get_profile(b)
    with pytest.raises(shredkv.Suppressed):
        sharded.resolve(("email", email_b))
    assert sharded.get_erasure("req-both").people == 2
    for i in range(2):
        view = sharded.shard(i)
        part = view.get_erasure("req-both")
        assert part.people == 1 and part.key_epoch >= 1 and part.audit_hash
        view.close()


def test_shard_only_calls_need_a_view(sharded: shredkv.Store, tmp_path: Path) -> None:
    (a, _), _ = people_in_each_shard(sharded)
    sharded.put(a, "notes", b"k", b"v")
    with pytest.raises(shredkv.FailedPrecondition, match="shredkv_shard"):
        sharded.read_feed()
    with pytest.raises(shredkv.FailedPrecondition, match="shredkv_shard"):
        sharded.read_erasure_log()
    with pytest.raises(shredkv.FailedPrecondition, match="backup_sharded"):
        sharded.backup(tmp_path / "plain-backup")
    with pytest.raises(shredkv.FailedPrecondition, match="rotate_root_key_sharded"):
        sharded.rotate_root_key(OTHER_KEY)
    view = sharded.shard(0)
    assert view.shard_count == 0
    assert len(view.read_feed()) >= 1
    assert view.read_erasure_log().store_id
    with pytest.raises(shredkv.InvalidArgument):
        sharded.shard(2)
    with pytest.raises(shredkv.InvalidArgument):
        view.shard_of(a)
    # What would skip the checks across shards is refused on a view
    # (outside audit 40b, F1, F5).
    with pytest.raises(shredkv.FailedPrecondition):
        view.rotate_root_key(OTHER_KEY)
    with pytest.raises(shredkv.FailedPrecondition):
        view.erase([a], request_id="via-view")
    with pytest.raises(shredkv.FailedPrecondition):
        view.create_person([("email", "other@example.org")])
    # The store's close closes its views first.
    sharded.close()
    assert view.closed
    with pytest.raises(shredkv.FailedPrecondition):
        view.get_profile(a)


def test_a_closed_view_lets_its_store_go(tmp_path: Path) -> None:
    # Outside audit 40b, F6: a closed view still held its store's object.
    store = shredkv.Store.open_sharded(tmp_path / "s", key=KEY, shards=2, create=True)
    view = store.shard(1)
    view.close()
    store.close()
    ref = weakref.ref(store)
    del store
    gc.collect()
    assert ref() is None
    assert view.closed


def test_backup_restore_and_root_key(sharded: shredkv.Store, tmp_path: Path) -> None:
    (a, _), (b, _) = people_in_each_shard(sharded)
    infos = sharded.backup_sharded(tmp_path / "backup")
    assert len(infos) == 2 and infos[0].store_id != infos[1].store_id
    sharded.erase([b], request_id="after-backup")
    logs = []
    for i in range(2):
        view = sharded.shard(i)
        logs.append(view.read_erasure_log())
        view.close()
    sharded.close()
    with pytest.raises(shredkv.InvalidArgument):
        shredkv.restore_sharded(tmp_path / "backup", tmp_path / "restored", key=KEY)
    # Logs in the wrong order are named as such (outside audit 40b, F4).
    with pytest.raises(shredkv.InvalidArgument, match="shard order"):
        shredkv.restore_sharded(tmp_path / "backup", tmp_path / "restored", key=KEY, erasure_logs=logs[::-1])
    applied = shredkv.restore_sharded(tmp_path / "backup", tmp_path / "restored", key=KEY, erasure_logs=logs)
    assert applied.people_erased == 1
    shredkv.rotate_root_key_sharded(tmp_path / "restored", key=KEY, new_key=OTHER_KEY)
    with pytest.raises(shredkv.WrongKey):
        shredkv.Store.open_sharded(tmp_path / "restored", key=KEY)
    with shredkv.Store.open_sharded(tmp_path / "restored", key=OTHER_KEY) as restored:
        assert restored.get_profile(a)["name"]
        with pytest.raises(shredkv.Erased):
            restored.get_profile(b)
