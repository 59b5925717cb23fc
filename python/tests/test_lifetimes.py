"""Lifetimes of the C handles behind the Python objects (review findings of
issue 19): a store collected in a reference cycle together with its lease
and iterators, a lease racing close(), and name buffers kept alive by the
arrays that point at them."""
from __future__ import annotations

import gc
import threading
import warnings
import weakref

import pytest

import shredkv
from shredkv import _values

from conftest import KEY


def test_a_store_collected_in_a_cycle_destroys_its_iterators_and_leases_first(tmp_path) -> None:
    # The cyclic collector clears weak references before it runs finalizers:
    # a store that found its iterators and leases only through weak
    # references closed the C store under a live lease (use after free).
    class Holder:
        pass

    holder = Holder()
    store = shredkv.Store.open(tmp_path / "store", key=shredkv.raw_key(KEY), create=True,
                               durability=shredkv.Durability.NO_SYNC)
    ann = store.create_person([("email", "cycle@example.org")])
    store.append_event(ann, "login", 1_700_000_000_000, {"n": 1})
    holder.store = store
    holder.lease = store.lease(ann, "support")
    holder.events = holder.lease.scan_events()
    next(holder.events)
    holder.scan = store.scan_events(ann)
    store.holder = holder  # the cycle: store -> holder -> store, lease, iterators
    lease_cell, it_cell = holder.lease._cell, holder.events._cell
    ref = weakref.ref(store)
    del holder, store
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    assert ref() is None
    assert lease_cell.h is None and it_cell.h is None
    # The directory can be opened again: the C store was closed.
    with shredkv.Store.open(tmp_path / "store", key=shredkv.raw_key(KEY)) as again:
        assert again.resolve(("email", "cycle@example.org")) == ann


def test_close_releases_a_lease_acquired_while_it_ran(open_store) -> None:
    store = open_store()
    ann = store.create_person([("email", "race@example.org")])
    leases = []
    errors = []

    def take() -> None:
        for _ in range(200):
            try:
                leases.append(store.lease(ann, "support"))
            except shredkv.FailedPrecondition:
                return
            except shredkv.Error as e:  # pragma: no cover - reported below
                errors.append(e)
                return

    t = threading.Thread(target=take)
    t.start()
    store.close()
    t.join()
    assert not errors
    # Every lease handed out before close was released by it, none after.
    assert all(lease.released for lease in leases)


def test_an_array_of_names_keeps_its_name_buffers_alive() -> None:
    names = ("keepalive_a_" + str(id(object())), "keepalive_b_" + str(id(object())))
    arr, n = _values.name_array(names)
    assert n == 2
    buffer = weakref.ref(_values._NAME_C_CACHE[names[0]])
    # A cache eviction (another thread, or a later call) drops the caches'
    # references; the array still points at the buffers.
    _values._NAME_C_CACHE.pop(names[0])
    _values._NAME_C_CACHE.pop(names[1])
    _values._ARRAY_CACHE.pop(names)
    gc.collect()
    assert buffer() is not None
    assert _values.ffi.string(arr[0]).decode() == names[0]
    del arr
    gc.collect()
    assert buffer() is None


def test_a_clock_that_fails_falls_back_to_the_system_clock(open_store) -> None:
    # cffi returns 0 from a callback that raised: the store's "now" would be
    # the Unix epoch (review finding). The system clock is used instead.
    calls = []

    def broken() -> int:
        calls.append(1)
        raise RuntimeError("clock down")

    import sys
    import time
    reported = []
    saved, sys.unraisablehook = sys.unraisablehook, reported.append
    try:
        before = time.time_ns() // 1_000_000
        store = open_store(clock=broken)
        ann = store.create_person([("email", "clock@example.org")])
        created = store.get_person(ann).created_ms
    finally:
        sys.unraisablehook = saved
    assert calls
    assert created >= before
    # The failure is reported (sys.unraisablehook), not swallowed.
    assert reported and reported[0].exc_type is RuntimeError
    assert "system clock was used" in reported[0].err_msg


def test_a_clock_that_returns_seconds_as_a_float_is_refused_and_the_system_clock_used(open_store) -> None:
    # Outside audit 38b, F8: a float was taken as ms, so clock=time.time put
    # "now" in January 1970 and nothing ever reached its retention rule.
    import sys
    import time
    reported = []
    saved, sys.unraisablehook = sys.unraisablehook, reported.append
    try:
        before = time.time_ns() // 1_000_000
        store = open_store(clock=time.time)
        ann = store.create_person([("email", "seconds@example.org")])
        created = store.get_person(ann).created_ms
    finally:
        sys.unraisablehook = saved
    assert created >= before
    assert reported and reported[0].exc_type is TypeError


def test_a_clock_that_fails_with_the_default_hook_still_uses_the_system_clock(open_store, capfd) -> None:
    # Stop 26's audit: CPython's own unraisablehook refused the report
    # object with TypeError, the fallback failed with it and cffi's default
    # 0 made "now" the Unix epoch. The failure is printed on stderr instead.
    import sys
    import time

    def broken() -> int:
        raise RuntimeError("clock down")

    saved, sys.unraisablehook = sys.unraisablehook, sys.__unraisablehook__  # pytest installs its own
    try:
        before = time.time_ns() // 1_000_000
        store = open_store(clock=broken)
        ann = store.create_person([("email", "clock2@example.org")])
        created = store.get_person(ann).created_ms
    finally:
        sys.unraisablehook = saved
    assert created >= before
    err = capfd.readouterr().err
    assert "the system clock was used" in err
    assert "RuntimeError: clock down" in err
    assert "TypeError" not in err


def test_a_key_callback_interrupted_by_ctrl_c_fails_the_call_and_raises_the_interrupt(tmp_path) -> None:
    # Stop 26's audit (high): a KeyboardInterrupt in get_key became cffi's
    # default return 0 — success — and the library sealed the store under
    # uninitialised stack bytes: rotate_root_key left a store neither key
    # opened. The call now fails, nothing is written, and the interrupt
    # reaches the caller.
    good = bytes(range(32))
    d = tmp_path / "s"
    with shredkv.Store.open(d, key=good, create=True) as store:
        ann = store.create_person([("email", "ann@example.org")], {"name": "Ann"})

        def interrupted(salt: bytes) -> bytes:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            store.rotate_root_key(shredkv.key_callback(interrupted))
    with shredkv.Store.open(d, key=good) as store:  # still the old key
        assert store.get_profile(ann) == {"name": "Ann"}

    def leaving(salt: bytes) -> bytes:
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        shredkv.Store.open(tmp_path / "new", key=shredkv.key_callback(leaving), create=True)
    # No store was made under a key nobody has: the good key creates it.
    with shredkv.Store.open(tmp_path / "new", key=good, create=True) as store:
        store.create_person([("email", "bob@example.org")])
    with shredkv.Store.open(tmp_path / "new", key=good) as store:
        assert store.resolve(("email", "bob@example.org"))


def test_a_key_callback_supplies_the_root_key_and_its_failure_fails_the_open(tmp_path) -> None:
    salts = []

    def from_kms(salt: bytes) -> bytes:
        salts.append(salt)
        return KEY

    with shredkv.Store.open(tmp_path / "store", key=shredkv.key_callback(from_kms, "kms"), create=True,
                            durability=shredkv.Durability.NO_SYNC) as store:
        ann = store.create_person([("email", "kms@example.org")])
    assert salts and len(salts[0]) == 16
    # The same key given raw opens it: the callback's bytes are the root key.
    with shredkv.Store.open(tmp_path / "store", key=shredkv.raw_key(KEY)) as store:
        assert store.resolve(("email", "kms@example.org")) == ann

    def down(salt: bytes) -> bytes:
        raise RuntimeError("kms unreachable")

    with pytest.raises(shredkv.StoreIOError):
        shredkv.Store.open(tmp_path / "store", key=shredkv.key_callback(down))
    with pytest.raises(shredkv.WrongKey):
        shredkv.Store.open(tmp_path / "store", key=shredkv.key_callback(lambda salt: bytes([7]) * 32))
    # 32 zero bytes are what a callback that never wrote its key leaves
    # (stop 26): refused like a failure, not tried as a key.
    with pytest.raises(shredkv.StoreIOError):
        shredkv.Store.open(tmp_path / "store", key=shredkv.key_callback(lambda salt: bytes(32)))


# Outside audit 32a, F1: a store dropped without close() in a reference cycle
# was finalized by the garbage collector on its own background maintenance
# thread, inside a listener; Store.__del__ closed it there and the process
# aborted ("terminate called without an active exception"). The finalizer
# now hands the close to another thread. Run in a child process: the old
# failure killed the interpreter.
_FINALIZED_ON_THE_BACKGROUND_THREAD = r'''
import gc, sys, threading, time, warnings
import shredkv
warnings.simplefilter("ignore")
gc.disable()  # a collection happens only where a callback makes one
dropped, collected = threading.Event(), threading.Event()
in_clock = sys.argv[2] == "clock"

def collect_on_the_background_thread():
    if dropped.is_set() and not collected.is_set() and threading.current_thread() is not threading.main_thread():
        gc.collect()
        collected.set()

class Collector(shredkv.Listener):
    def maintenance_completed(self, info):
        collect_on_the_background_thread()

def clock():
    collect_on_the_background_thread()
    return int(time.time() * 1000)

class App:
    pass

app = App()
app.me = app
extra = {"clock": clock} if in_clock else {"listeners": [Collector()]}
app.store = shredkv.Store.open(sys.argv[1], key=shredkv.raw_key(bytes(range(32))), create=True,
                               durability=shredkv.Durability.NO_SYNC, background_maintenance_ms=20, **extra)
person = app.store.create_person([("email", "a@example.org")])
if len(sys.argv) > 3 and sys.argv[3] == "no-new-threads":
    # As at interpreter shutdown on Python 3.12+ ("can't create new thread
    # at interpreter shutdown"), or where the finalizing thread holds
    # threading's own lock: a finalizer must not need a new thread.
    def refuse(self):
        raise RuntimeError("can't create new thread here")
    threading.Thread.start = refuse
del app
dropped.set()
assert collected.wait(60), "no background round"
deadline = time.monotonic() + 60
while True:  # closed by the finalizer's thread: the directory opens again
    try:
        again = shredkv.Store.open(sys.argv[1], key=shredkv.raw_key(bytes(range(32))))
        break
    except shredkv.FailedPrecondition:
        assert time.monotonic() < deadline, "the finalized store was never closed"
        time.sleep(0.05)
with again:
    assert again.resolve(("email", "a@example.org")) == person
print("closed")
'''


# The garbage collector run by a listener, and (stop 32's review) by the
# clock callback, which the first fix did not mark as a callback. With
# "no-new-threads" no thread can be started once the store is open (review
# of stop 32, F2: the finalizer started one, which threading may refuse or
# block on there; the store then stayed open): the closer thread, started
# when the store was opened, closes it.
@pytest.mark.parametrize("where,threads", [("listener", "any"), ("clock", "any"), ("listener", "no-new-threads")])
def test_a_store_finalized_on_its_background_thread_is_closed_from_another(tmp_path, where, threads) -> None:
    import subprocess
    import sys

    script = tmp_path / "finalize.py"
    script.write_text(_FINALIZED_ON_THE_BACKGROUND_THREAD)
    run = subprocess.run([sys.executable, str(script), str(tmp_path / "store"), where, threads],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "closed"


def test_close_inside_a_listener_raises_and_leaves_the_store_open(open_store) -> None:
    outcome = []

    class Closer(shredkv.Listener):
        def erasure_committed(self, receipt) -> None:
            try:
                store.close()
                outcome.append("closed")
            except shredkv.FailedPrecondition as e:
                outcome.append(str(e))

    store = open_store(listeners=[Closer()])
    ann = store.create_person([("email", "ann@example.org")])
    bob = store.create_person([("email", "bob@example.org")])
    store.erase(ann)
    assert len(outcome) == 1 and "callback" in outcome[0]
    assert not store.closed
    assert store.resolve(("email", "bob@example.org")) == bob


# Review of stop 35, R5: the closer thread's lock was not reset after fork();
# a child forked while the parent held it waited for ever in Store.open.
def test_a_child_forked_while_the_closer_lock_is_held_opens_a_store(tmp_path) -> None:
    import os
    import signal
    import time

    from shredkv import _store

    with _store._CLOSER_LOCK:
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                with shredkv.Store.open(tmp_path / "child", key=shredkv.raw_key(bytes(range(32))), create=True):
                    code = 0
            finally:
                os._exit(code)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the child hung opening a store")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0


# ---- Python audit 37a -------------------------------------------------------------------------


def _in_thread(fn, timeout: float = 20.0):
    """Runs fn() on a daemon thread; its result or exception, or pytest.fail
    if it does not return in `timeout` s (before the fixes these hung for
    ever, so the test fails instead of hanging)."""
    out = []

    def run() -> None:
        try:
            out.append(("ok", fn()))
        except BaseException as e:  # reported to the test
            out.append(("raised", e))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        pytest.fail(f"{getattr(fn, '__name__', fn)} did not return within {timeout} s (hung)")
    return out[0]


def _pause_at(line_text: str, action):
    """A sys.settrace function that calls action() once, when the traced
    thread is about to run the line of shredkv's source whose text is
    `line_text`: a signal handler, say, that Python runs between two
    bytecodes of a call."""
    import linecache

    done = []

    def local(frame, event, arg):
        if event == "line" and not done and \
                linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip() == line_text:
            done.append(True)
            action()
        return local

    def tracer(frame, event, arg):
        if "shredkv" in frame.f_code.co_filename:
            return local
        return None

    return tracer


def test_close_inside_an_export_write_callback_raises_and_leaves_the_store_open(open_store) -> None:
    # Python audit 37a, F1: close() in export_to's write callback waited for
    # the export that called it, for ever.
    store = open_store()
    ann = store.create_person([("email", "ann@example.org")], {"name": "Ann"})
    outcome = []

    def write(chunk: bytes) -> None:
        try:
            store.close()
            outcome.append("closed")
        except shredkv.FailedPrecondition as e:
            outcome.append(str(e))

    kind, value = _in_thread(lambda: store.export_to(ann, write))
    assert kind == "ok", value
    assert outcome and all("callback" in o for o in outcome), outcome
    assert not store.closed
    assert store.get_profile(ann) == {"name": "Ann"}


def test_close_inside_a_key_callback_raises_and_leaves_the_store_open(open_store, store_dir) -> None:
    # Python audit 37a, F1: the same in a key callback (rotate_root_key).
    store = open_store()
    outcome = []
    new_key = bytes(range(50, 82))

    def get_key(salt: bytes) -> bytes:
        try:
            store.close()
            outcome.append("closed")
        except shredkv.FailedPrecondition as e:
            outcome.append(str(e))
        return new_key

    kind, value = _in_thread(lambda: store.rotate_root_key(shredkv.key_callback(get_key)))
    assert kind == "ok", value
    assert outcome and all("callback" in o for o in outcome), outcome
    assert not store.closed
    store.close()
    shredkv.Store.open(store_dir, key=new_key).close()


def test_close_from_a_signal_handler_inside_a_call_on_the_same_thread_raises(open_store) -> None:
    # Python audit 37a, F1: a signal handler runs between two bytecodes of a
    # call of the main loop (here: right before the C call, simulated with a
    # trace function); close() there waited for that call, for ever.
    store = open_store()
    ann = store.create_person([("email", "ann@example.org")], {"name": "Ann"})
    outcome = []

    def handler() -> None:
        try:
            store.close()
            outcome.append("closed")
        except shredkv.FailedPrecondition as e:
            outcome.append(str(e))

    def main_loop():
        import sys
        sys.settrace(_pause_at("rc = fn(h, *args, err)", handler))
        try:
            return store.get_profile(ann)
        finally:
            sys.settrace(None)

    kind, value = _in_thread(main_loop)
    assert outcome and "same thread" in outcome[0] and "flag" in outcome[0], outcome
    assert (kind, value) == ("ok", {"name": "Ann"})
    assert not store.closed
    store.close()
    assert store.closed


def _blocked_eraser(store, person):
    """Starts a thread whose erase waits (inside the library) for the lease
    the caller holds on `person`; returns the thread."""
    import time

    def erase() -> None:
        try:
            store.erase(person)
        except shredkv.Busy:
            pass

    t = threading.Thread(target=erase, daemon=True)
    t.start()
    time.sleep(0.3)  # in the library by now (if not, close() simply does not wait for it)
    return t


def test_ctrl_c_while_close_waits_for_other_threads_leaves_the_store_open(open_store, store_dir) -> None:
    # Python audit 37a, F2: a KeyboardInterrupt while close() waited for
    # another thread's call left the store half closed: closed for Python,
    # open in the library (a reopen failed for good), out of the atexit list.
    import signal

    store = open_store(lease_drain_timeout_ms=3000)
    ann = store.create_person([("email", "ann@example.org")], {"name": "Ann"})
    lease = store.lease(ann, "support")
    eraser = _blocked_eraser(store, ann)

    def ctrl_c(signum, frame):
        raise KeyboardInterrupt("simulated Ctrl-C")

    old = signal.signal(signal.SIGALRM, ctrl_c)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(KeyboardInterrupt):
            store.close()  # waits for the eraser (up to 3 s)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert not store.closed and not lease.released
    from shredkv import _store
    assert store in _store._OPEN_STORES
    eraser.join(30)
    assert lease.get_profile() == {"name": "Ann"}
    lease.release()
    store.close()
    shredkv.Store.open(store_dir, key=shredkv.raw_key(KEY)).close()


def test_an_exception_once_close_releases_handles_is_raised_after_the_close(open_store, store_dir) -> None:
    # Python audit 37a, F2: an exception while close() destroyed iterators
    # or released leases skipped shredkv_close. Now the close completes and
    # the exception is raised after it.
    import sys

    store = open_store()
    ann = store.create_person([("email", "ann@example.org")])
    store.append_event(ann, "e", 1)
    lease = store.lease(ann, "support")
    it = store.scan_events(ann)

    def interrupt() -> None:
        raise KeyboardInterrupt("simulated Ctrl-C")

    tracer = _pause_at("for cell in leases:", interrupt)
    sys.settrace(tracer)
    try:
        with pytest.raises(KeyboardInterrupt):
            store.close()
    finally:
        sys.settrace(None)
    assert store.closed and lease.released
    with pytest.raises(shredkv.FailedPrecondition):
        next(it)
    from shredkv import _store
    assert store not in _store._OPEN_STORES
    shredkv.Store.open(store_dir, key=shredkv.raw_key(KEY)).close()


def test_a_second_close_waits_for_the_close_in_progress(open_store, store_dir) -> None:
    # Python audit 37a, F10: a second close() returned at once while the
    # first still waited; a reopen right after it failed ("already open").
    store = open_store(lease_drain_timeout_ms=3000)  # the first close waits up to 3 s: margin for a loaded machine
    ann = store.create_person([("email", "ann@example.org")])
    lease = store.lease(ann, "support")
    eraser = _blocked_eraser(store, ann)
    first = threading.Thread(target=store.close, daemon=True)
    first.start()
    import time
    time.sleep(0.2)
    assert store.closed and first.is_alive()  # the first close waits for the eraser
    kind, value = _in_thread(store.close)
    assert kind == "ok", value
    shredkv.Store.open(store_dir, key=shredkv.raw_key(KEY)).close()  # closed when close() returned
    assert lease.released
    first.join(30)
    eraser.join(30)


def test_a_child_after_fork_gets_failed_precondition_from_iterators_leases_and_a_reopen(open_store,
                                                                                         store_dir) -> None:
    # Python audit 37a, F11: in the child an iterator opened in the parent
    # still yielded the items it had read ahead, and a reopen said "already
    # open in this process" (the process that has it open is the parent).
    import os
    import signal
    import time

    store = open_store()
    ann = store.create_person([("email", "ann@example.org")], {"name": "Ann"})
    for i in range(5):
        store.append_event(ann, "e", i)
    it = store.scan_events(ann)
    assert next(it).ts_ms == 0  # the C iterator has read ahead
    lease = store.lease(ann, "support")
    lease_it = lease.scan_events()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            lines = []
            for label, call in (("iter", lambda: next(it)), ("lease", lease.get_profile),
                                ("lease iter", lambda: next(lease_it)),
                                ("reopen", lambda: shredkv.Store.open(store_dir, key=shredkv.raw_key(KEY)))):
                try:
                    call()
                    lines.append(f"{label}: no error")
                except shredkv.FailedPrecondition as e:
                    lines.append(f"{label}: {e}")
                except BaseException as e:
                    lines.append(f"{label}: {type(e).__name__} {e}")
            os.write(w, "\n".join(lines).encode())
        finally:
            os._exit(0)
    os.close(w)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the child hung")
        time.sleep(0.05)
    with os.fdopen(r) as f:
        lines = f.read().splitlines()
    assert len(lines) == 4, lines
    for line in lines:
        assert "fork()" in line and "parent" in line, lines
    # The parent's objects still work.
    assert next(it).ts_ms == 1
    assert lease.get_profile() == {"name": "Ann"}
    assert next(lease_it).ts_ms == 0
