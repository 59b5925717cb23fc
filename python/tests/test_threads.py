"""Threads: the GIL is released during C calls (shown by outcome, never by
timing), a store is shared between threads, close waits for calls."""
from __future__ import annotations

import threading
from typing import List

import pytest

import shredkv

from conftest import T0


def test_gil_released_while_erase_waits_for_a_lease(open_store) -> None:
    # Thread B erases a person another thread (A, this one) holds a lease on:
    # inside the C call B waits for the lease to drain. A can release the
    # lease only by running Python code; if B's C call held the GIL, A could
    # not, and B's erase would fail with Busy after the (long) drain timeout.
    # Passing needs only that the GIL is released: no timing is asserted.
    store = open_store(lease_drain_timeout_ms=120_000)
    p = store.create_person([("email", "a@example.org")])
    lease = store.lease(p, "support")
    outcome: List[object] = []

    def eraser() -> None:
        try:
            outcome.append(store.erase(p))
        except BaseException as e:  # reported below
            outcome.append(e)

    b = threading.Thread(target=eraser)
    b.start()
    # Give B the chance to enter the C call (not required for correctness:
    # if it has not yet, the erase simply finds no lease).
    b.join(timeout=0.5)
    lease.release()
    b.join(timeout=300)
    assert not b.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], shredkv.ErasureReceipt), outcome


def test_durable_writes_from_two_threads(open_store) -> None:
    store = open_store(durability=shredkv.Durability.FULL_SYNC)
    errors: List[BaseException] = []

    def writer(tag: str) -> None:
        try:
            for i in range(20):
                with store.batch() as b:
                    p = b.create_person([("email", f"{tag}{i}@example.org")])
                    b.append_event(p, "signup", T0 + i, {"n": i})
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.stats()["people"] == 40
    assert store.resolve(("email", "b19@example.org"))


def test_shared_reads(open_store) -> None:
    store = open_store()
    with store.batch() as b:
        ids = [b.create_person([("email", f"u{i}@example.org")], {"i": i}) for i in range(50)]
    errors: List[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(5):
                for i in range(50):
                    assert store.resolve(("email", f"u{i}@example.org")) == ids[i]
                    assert store.get_profile(ids[i]) == {"i": i}
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_close_while_other_threads_call(open_store, store_dir) -> None:
    store = open_store(store_dir)
    p = store.create_person([("email", "a@example.org")])
    stop = threading.Event()
    seen: List[BaseException] = []

    def caller() -> None:
        while not stop.is_set():
            try:
                store.get_profile(p)
            except shredkv.FailedPrecondition as e:
                seen.append(e)
                return
            except BaseException as e:
                seen.append(e)
                return

    threads = [threading.Thread(target=caller) for _ in range(3)]
    for t in threads:
        t.start()
    store.close()
    stop.set()
    for t in threads:
        t.join()
    assert all(isinstance(e, shredkv.FailedPrecondition) for e in seen), seen


def test_listener_may_call_the_store(open_store) -> None:
    got: List[object] = []

    class Checker(shredkv.Listener):
        def erasure_committed(self, receipt: shredkv.ErasureReceipt) -> None:
            got.append(holder[0].get_erasure(receipt.request_id))

    holder: List[shredkv.Store] = []
    store = open_store(listeners=[Checker()])
    holder.append(store)
    p = store.create_person([("email", "a@example.org")])
    store.erase(p, request_id="from-listener")
    assert len(got) == 1 and got[0].request_id == "from-listener"  # type: ignore[attr-defined]


@pytest.mark.parametrize("n", [2])
def test_background_maintenance_callbacks(open_store, n: int) -> None:
    # The background thread calls the listener (a non-Python thread entering
    # Python): the store purges by itself.
    done = threading.Event()

    class Waiter(shredkv.Listener):
        def maintenance_completed(self, info: shredkv.MaintenanceInfo) -> None:
            if info.background and info.job == shredkv.MaintenanceJob.PURGE:
                done.set()

    store = open_store(listeners=[Waiter()], background_maintenance_ms=20)
    p = store.create_person([("email", "a@example.org")])
    store.erase(p)
    assert done.wait(timeout=120)
    store.close()


def test_unclosed_store_is_closed_by_gc(tmp_path) -> None:
    import gc
    import warnings

    s = shredkv.Store.open(tmp_path / "s", key=bytes(range(32)), create=True)
    p = s.create_person([("email", "a@example.org")])
    it = s.scan_events(p)
    del it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del s
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught)
    # Closed: the directory opens again in this process.
    with shredkv.Store.open(tmp_path / "s", key=bytes(range(32))) as again:
        assert again.resolve(("email", "a@example.org")) == p


def test_exit_with_open_store_and_background_thread(tmp_path) -> None:
    # A process that exits with a store open (background maintenance calling
    # a Python listener) exits cleanly: the atexit hook closes the store
    # before the interpreter is torn down.
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import shredkv, time
        class L(shredkv.Listener):
            def maintenance_completed(self, info):
                pass
        s = shredkv.Store.open({str(tmp_path / 's')!r}, key=bytes(range(32)), create=True,
                               background_maintenance_ms=1, listeners=[L()], logger=lambda l, m: None)
        p = s.create_person([("email", "a@example.org")])
        it = s.scan_events(p)
        lease = s.lease(p, "support")
        time.sleep(0.05)
        print("exiting")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "exiting"


# Python audit 37a, F3: ScanIterator.close(), Lease.release() and
# WriteBatch.destroy() freed the C handle at once, under a call on it that
# another thread was making (a segmentation fault). Each case pauses the
# user thread right before its C call (a trace function), frees from a
# second thread, checks that the free waits, then lets the user go on. Run
# in a child interpreter: before the fix the process crashed.
_FREE_WHILE_IN_USE = r'''
import linecache, sys, threading
import shredkv

mode, directory = sys.argv[1], sys.argv[2]
store = shredkv.Store.open(directory, key=bytes(range(32)), create=True,
                           durability=shredkv.Durability.NO_SYNC, iterator_batch_size=1)
ann = store.create_person([("email", "ann@example.org")], {"name": "Ann"})
for i in range(5):
    store.append_event(ann, "e", i, {"i": i})
paused, go = threading.Event(), threading.Event()
if mode == "iterator":
    it = store.scan_events(ann)
    next(it)
    line, use, free = "_iter_next(h)", lambda: next(it).ts_ms, it.close
elif mode == "lease":
    lease = store.lease(ann, "support")
    line, use, free = "rc = lib.shredkv_lease_get_profile(h, out, err)", lease.get_profile, lease.release
else:
    batch = shredkv.WriteBatch()
    batch.append_event(ann, "e", 10, {"i": 10})
    line, use, free = "rc = fn(h, *args, err)", lambda: store.write(batch), batch.destroy

def local(frame, event, arg):
    if event == "line" and not paused.is_set() and \
            linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip() == line:
        paused.set()
        go.wait(30)
    return local

def tracer(frame, event, arg):
    return local if "shredkv" in frame.f_code.co_filename else None

got = []
def user():
    sys.settrace(tracer)
    try:
        got.append(use())
    except BaseException as e:
        got.append(e)
    finally:
        sys.settrace(None)

t = threading.Thread(target=user)
t.start()
assert paused.wait(30)
freer = threading.Thread(target=free)
freer.start()
freer.join(0.5)
waited = freer.is_alive()
go.set()
t.join(30)
freer.join(30)
print("waited" if waited else "did not wait", repr(got[0]), len(list(store.scan_events(ann))))
store.close()
'''


@pytest.mark.parametrize("mode,result", [("iterator", "1 5"), ("lease", "{'name': 'Ann'} 5"),
                                         ("batch", "None 6")])
def test_a_free_from_another_thread_waits_for_the_call_in_use(tmp_path, mode, result) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _FREE_WHILE_IN_USE, mode, str(tmp_path / "store")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert proc.stdout.strip() == f"waited {result}", proc.stdout
