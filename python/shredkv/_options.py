"""Key providers, custody, store options and the callbacks they carry."""
from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from ._errors import Error, make_error, raise_error
from ._ffi import ffi, lib
from ._types import (
    Cipher, Durability, LawfulBasis, LogLevel, MaintenanceInfo, MaintenanceJob, Normalization,
    TrackingPolicy, _to_ms,
)
from ._values import NULL, encode_name, encode_text, encode_text_or_bytes, flag
from ._convert import build_retention, read_receipt

PathLike = Union[str, "os.PathLike[str]"]
_CHARPP = ffi.typeof("char**")


def encode_path(path: Any, what: str = "path") -> bytes:
    """A path (str or os.PathLike) as NUL-terminated bytes."""
    if isinstance(path, bytes):
        b = path
    else:
        try:
            b = os.fsencode(path)
        except TypeError:
            raise TypeError(f"{what} must be a str or os.PathLike, not {type(path).__name__}") from None
    if b"\0" in b:
        raise ValueError(f"{what} holds a NUL character")
    return b


# ---- key providers and custody ------------------------------------------------------------


class KeyProvider:
    """Supplies a store's 32-byte root key. Make one with key_file(),
    passphrase() or raw_key(); pass it as ``key=`` to Store.open (bytes of
    length 32 are accepted there too, as raw_key(bytes))."""

    __slots__ = ("_h", "_what", "_keepalive", "_source")

    def __init__(self, handle: Any, what: str, keepalive: Any = None, source: Any = None) -> None:
        if handle == NULL:
            raise make_error(6, f"InvalidArgument: {what}")
        self._h = ffi.gc(handle, lib.shredkv_key_provider_destroy)
        self._what = what
        # key_callback: the handle of its _KeySource. The library holds
        # the C provider as long as any store or options use it; Store.open
        # keeps this object (and with it the handle) for the store's life.
        self._keepalive = keepalive
        self._source = source

    def __repr__(self) -> str:
        return f"<shredkv.KeyProvider {self._what}>"

    def _reraise_interrupt(self) -> None:
        """Raises a KeyboardInterrupt / SystemExit that interrupted this
        provider's key callback during the library call just made (which
        then failed with IO_ERROR, no key used)."""
        source = self._source
        if source is not None and source.interrupt is not None:
            interrupt, source.interrupt = source.interrupt, None
            raise interrupt


def reraise_key_interrupts(objects: Any) -> None:
    """KeyProvider._reraise_interrupt for every KeyProvider in `objects`."""
    for o in objects:
        if isinstance(o, KeyProvider):
            o._reraise_interrupt()


def key_file(path: PathLike) -> KeyProvider:
    """The root key from a file of 32 raw bytes, mode 0600 (read at open)."""
    p = encode_path(path)
    return KeyProvider(lib.shredkv_key_provider_file(p), f"key file {os.fsdecode(p)!r}")


def passphrase(secret: Union[str, bytes], *, interactive: bool = False) -> KeyProvider:
    """The root key derived with Argon2id from a passphrase and the store's
    salt. `interactive` selects Argon2id's fast limits (tests, not
    production). The passphrase is copied into guarded memory."""
    b = encode_text_or_bytes(secret, "passphrase")
    return KeyProvider(lib.shredkv_key_provider_passphrase(b, len(b), flag(interactive, "interactive")),
                       "passphrase")


class _KeySource:
    __slots__ = ("get_key", "interrupt")

    def __init__(self, get_key: Callable[[bytes], bytes]) -> None:
        self.get_key = get_key
        # A KeyboardInterrupt or SystemExit raised by get_key: the library
        # call fails (IO_ERROR) and the caller raises this instead.
        self.interrupt: Optional[BaseException] = None


# error=1: whatever escapes (nothing should) fails the call instead of
# cffi's default return value 0, which the library would take for a key.
@ffi.callback("int(void*, const char*, size_t, unsigned char[32], char**)", error=1)
def _root_key_cb(ctx: Any, salt: Any, salt_len: int, key_out: Any, message: Any) -> int:
    source = ffi.from_handle(ctx)
    try:
        with _IN_CALLBACK:  # close() in get_key raises FailedPrecondition (Python audit 37a, F1)
            key = source.get_key(ffi.unpack(salt, salt_len))
        if not isinstance(key, (bytes, bytearray, memoryview)):
            raise TypeError("the key callback must return 32 bytes")
        # 32 bytes, not 32 items of any size or a len() a subclass reports
        # (Python audit 37a, F9): checked as raw_key does.
        with memoryview(key) as whole, whole.cast("B") as view:
            if view.nbytes != 32:
                raise ValueError("the key callback must return 32 bytes")
            ffi.memmove(key_out, view, 32)
        return 0
    except Exception:  # the open fails with StoreIOError; the text could hold key material
        return 1
    except BaseException as e:  # KeyboardInterrupt, SystemExit: re-raised after the library call
        source.interrupt = e
        return 1


def key_callback(get_key: Callable[[bytes], bytes], description: str = "python") -> KeyProvider:
    """The root key from your own source (a KMS, a secret manager):
    ``get_key(store_salt)`` is called when a store opens (and by
    restore_backup and rotate_root_key) with the store's 16-byte salt and
    returns the 32 key bytes. An exception (or a wrong length) fails the
    open with StoreIOError; the exception itself is not passed on (its text
    could hold key material). A KeyboardInterrupt or SystemExit raised in
    get_key fails the library call and is then raised to the caller."""
    if not callable(get_key):
        raise TypeError("get_key must be callable")
    source = _KeySource(get_key)
    handle = ffi.new_handle(source)
    return KeyProvider(lib.shredkv_key_provider_callback(_root_key_cb, handle, encode_name(description)),
                       f"key callback {description!r}", handle, source)


def raw_key(key: bytes) -> KeyProvider:
    """Exactly 32 key bytes (e.g. from your KMS), copied into guarded memory.
    ValueError for another length."""
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise TypeError(f"a raw key is 32 bytes, not {type(key).__name__}")
    view = memoryview(key).cast("B")
    if view.nbytes != 32:
        raise ValueError(f"a raw key is 32 bytes, not {view.nbytes}")
    # Read in place (no bytes copy on the Python heap): a bytearray the
    # caller clears afterwards leaves the key only in guarded memory.
    return KeyProvider(lib.shredkv_key_provider_raw(ffi.from_buffer(view), 32), "raw key")


def as_key_provider(key: Any) -> KeyProvider:
    if isinstance(key, KeyProvider):
        return key
    if isinstance(key, (bytes, bytearray, memoryview)):
        return raw_key(key)
    raise TypeError("key must be a KeyProvider (key_file(), passphrase(), raw_key()) or 32 bytes, "
                    f"not {type(key).__name__}")


def create_key_file(path: PathLike) -> None:
    """Creates a new random 32-byte root key file (mode 0600, O_EXCL,
    fsynced). AlreadyExists if `path` exists."""
    err = ffi.new(_CHARPP)
    rc = lib.shredkv_create_key_file(encode_path(path), err)
    if rc:
        raise_error(rc, err)


class Custody:
    """Epoch keys held in a PKCS#11 token (pkcs11_custody)."""

    __slots__ = ("_h",)

    def __init__(self, handle: Any) -> None:
        self._h = ffi.gc(handle, lib.shredkv_custody_destroy)


def pkcs11_custody(module_path: PathLike, token_label: str, pin: Union[str, bytes]) -> Custody:
    """Epoch keys in the PKCS#11 token `token_label` of the module at
    `module_path`, opened with the user PIN (copied)."""
    pin_b = encode_text_or_bytes(pin, "pin")
    out = ffi.new("shredkv_custody_t**")
    err = ffi.new(_CHARPP)
    rc = lib.shredkv_custody_pkcs11(encode_path(module_path, "module_path"), encode_name(token_label),
                                    pin_b, len(pin_b), out, err)
    if rc:
        raise_error(rc, err)
    return Custody(out[0])


# ---- callbacks (module-level: created once; ctx is a handle to the Python object) ----


class _ClockFailure:
    """What _clock_failed hands to a sys.unraisablehook the application
    installed (the attributes of sys.UnraisableHookArgs)."""

    __slots__ = ("exc_type", "exc_value", "exc_traceback", "err_msg", "object")

    def __init__(self, exc_type: Any, exc_value: Any, exc_traceback: Any) -> None:
        self.exc_type, self.exc_value, self.exc_traceback = exc_type, exc_value, exc_traceback
        self.err_msg = "shredkv: the clock callback failed; the system clock was used"
        self.object = None


def _clock_failed(exception: Any, value: Any, traceback: Any) -> int:
    # A clock that raises, or returns something that is not a time, must
    # not make "now" the Unix epoch (created_ms, receipts, retention): the
    # store falls back to the system clock for that reading, whatever the
    # report below does. The error goes to the application's
    # sys.unraisablehook if it installed one (CPython's own accepts only its
    # internal argument type, which cannot be built from Python: stop 26's
    # audit saw it raise TypeError here), else to stderr as that hook would.
    now = time.time_ns() // 1_000_000
    try:
        import sys
        report = _ClockFailure(exception, value, traceback)
        hook = getattr(sys, "unraisablehook", None)
        if hook is not None and hook is not getattr(sys, "__unraisablehook__", None):
            hook(report)
        else:
            import traceback as tb
            sys.stderr.write(report.err_msg + ":\n")
            tb.print_exception(exception, value, traceback, file=sys.stderr)
    except BaseException:  # a report that fails must not turn into cffi's default 0
        pass
    return now


@ffi.callback("int64_t(void*)", onerror=_clock_failed)
def _clock_cb(ctx: Any) -> int:
    with _IN_CALLBACK:
        value = ffi.from_handle(ctx)()
    # int ms, a Timestamp or an aware datetime; a float is refused like any
    # other non-time (TypeError, reported, the system clock used): `time.time`
    # returns seconds, and was taken as ms, "now" in January 1970 (outside
    # audit 38b, F8).
    return _to_ms(value)


# How many library callbacks (clock, progress, logger, listeners, an
# export's write, a key callback) the current thread is inside. A store must
# not be closed there: the library waits for calls in flight, its background
# thread cannot join itself, and close() would wait for the call that runs
# the callback (Python audit 37a, F1: the write and key callbacks were not
# marked, and close() there hung).
_callbacks = threading.local()


class _InCallback:
    __slots__ = ()

    def __enter__(self) -> None:
        _callbacks.depth = getattr(_callbacks, "depth", 0) + 1

    def __exit__(self, *exc: Any) -> None:
        _callbacks.depth -= 1


_IN_CALLBACK = _InCallback()


def in_callback() -> bool:
    """True inside a clock, progress, logger, listener, export write or key
    callback."""
    return getattr(_callbacks, "depth", 0) > 0


@ffi.callback("void(void*, const char*, uint64_t, uint64_t)")
def _progress_cb(ctx: Any, operation: Any, done: int, total: int) -> None:
    with _IN_CALLBACK:
        ffi.from_handle(ctx)(ffi.string(operation).decode("utf-8", "replace"), done, total)


@ffi.callback("void(void*, int, const char*)")
def _log_cb(ctx: Any, level: int, message: Any) -> None:
    with _IN_CALLBACK:
        try:
            lv: Any = LogLevel(level)
        except ValueError:
            lv = level
        ffi.from_handle(ctx)(lv, ffi.string(message).decode("utf-8", "replace"))


@ffi.callback("void(void*, const shredkv_receipt_t*)")
def _erasure_committed_cb(ctx: Any, receipt: Any) -> None:
    with _IN_CALLBACK:
        ffi.from_handle(ctx).erasure_committed(read_receipt(receipt))


@ffi.callback("void(void*, const shredkv_receipt_t*)")
def _erasure_level_cb(ctx: Any, receipt: Any) -> None:
    with _IN_CALLBACK:
        ffi.from_handle(ctx).erasure_level_reached(read_receipt(receipt))


@ffi.callback("void(void*, int, unsigned char, int, int64_t, uint64_t, uint64_t)")
def _maintenance_cb(ctx: Any, job: int, background: int, code: int, duration_us: int, done: int,
                    pending: int) -> None:
    with _IN_CALLBACK:
        ffi.from_handle(ctx).maintenance_completed(
            MaintenanceInfo(MaintenanceJob._of(job), bool(background), code, duration_us, done, pending))


@ffi.callback("void(void*, int, const char*)")
def _background_error_cb(ctx: Any, code: int, message: Any) -> None:
    with _IN_CALLBACK:
        text = ffi.string(message).decode("utf-8", "replace") if message else None
        ffi.from_handle(ctx).background_error(make_error(code, text))


class Listener:
    """Base class of store listeners (Options::listeners; listener.h's
    rules). Override what you need; methods left as they are here are not
    registered. Notices arrive after the store released its locks, one at a
    time, on the thread that did the work or on the background maintenance
    thread. A listener may call the store (not close it), must return
    quickly, and should not raise (an exception is printed and dropped).
    Any object with some of these methods works as well."""

    def erasure_committed(self, receipt: Any) -> None:
        """An erasure committed (the receipt the caller gets, level LOGICAL)."""

    def erasure_level_reached(self, receipt: Any) -> None:
        """An erasure reached CRYPTOGRAPHIC or PURGED."""

    def maintenance_completed(self, info: MaintenanceInfo) -> None:
        """A maintenance job ran (info.code != 0: it failed)."""

    def background_error(self, error: Error) -> None:
        """Background maintenance failed (the exception, not raised)."""


_LISTENER_SLOTS = (
    ("erasure_committed", "erasure_committed", _erasure_committed_cb),
    ("erasure_level_reached", "erasure_level_reached", _erasure_level_cb),
    ("maintenance_completed", "maintenance_completed", _maintenance_cb),
    ("background_error", "background_error", _background_error_cb),
)


def _overrides(obj: Any, name: str) -> bool:
    method = getattr(obj, name, None)
    if method is None or not callable(method):
        return False
    base = getattr(Listener, name)
    return getattr(method, "__func__", None) is not base


# ---- options ----------------------------------------------------------------------------------


_SIMPLE: Dict[str, Tuple[str, Callable[[Any], Any]]] = {
    "error_if_exists": ("shredkv_options_set_error_if_exists", lambda v: flag(v, "error_if_exists")),
    "initial_map_size": ("shredkv_options_set_initial_map_size", int),
    "max_map_size": ("shredkv_options_set_max_map_size", int),
    "dek_cache_capacity": ("shredkv_options_set_dek_cache_capacity", int),
    "cipher": ("shredkv_options_set_cipher", lambda v: int(Cipher(v))),
    "iterator_batch_size": ("shredkv_options_set_iterator_batch_size", int),
    "unlink_time_granularity_ms": ("shredkv_options_set_unlink_time_granularity_ms", int),
    "analytics_time_granularity_ms": ("shredkv_options_set_analytics_time_granularity_ms", int),
    "rotate_after_erasures": ("shredkv_options_set_rotate_after_erasures", int),
    "rotate_after_ms": ("shredkv_options_set_rotate_after_ms", int),
    "rotation_batch_size": ("shredkv_options_set_rotation_batch_size", int),
    "background_maintenance_ms": ("shredkv_options_set_background_maintenance_ms", int),
    "purge_budget_rows": ("shredkv_options_set_purge_budget_rows", int),
    "sweep_budget_rows": ("shredkv_options_set_sweep_budget_rows", int),
    "tracking_purpose": ("shredkv_options_set_tracking_purpose", encode_name),
    "tracking_policy": ("shredkv_options_set_tracking_policy", lambda v: int(TrackingPolicy(v))),
    "lease_drain_timeout_ms": ("shredkv_options_set_lease_drain_timeout_ms", int),
    "audit_processing_reads": ("shredkv_options_set_audit_processing_reads",
                               lambda v: flag(v, "audit_processing_reads")),
}

# Every keyword Store.open (and restore_backup) takes besides directory and key.
OPTION_NAMES = frozenset(_SIMPLE) | {
    "create", "read_only", "durability", "custody", "identifier_types", "clock", "progress",
    "logger", "log_level", "listeners", "retention", "purposes", "categories", "event_categories",
    "collection_categories", "attribute_categories",
}


def _pairs(value: Any, what: str) -> Iterable[Tuple[Any, Any]]:
    if isinstance(value, Mapping):
        return value.items()
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{what} is a mapping (or pairs), not a string")
    return value


class BuiltOptions:
    """An owned shredkv_options_t* and what its callbacks need alive (as long
    as any store opened with it)."""

    __slots__ = ("handle", "keepalive")

    def __init__(self) -> None:
        self.handle = ffi.gc(lib.shredkv_options_create(), lib.shredkv_options_destroy)
        self.keepalive: List[Any] = []

    def release(self) -> None:
        h, self.handle = self.handle, None
        if h is not None:
            ffi.release(h)


def build_options(directory: Optional[PathLike], key: Any, options: Mapping[str, Any]) -> BuiltOptions:
    unknown = set(options) - OPTION_NAMES
    if unknown:
        raise TypeError(f"unknown store option(s): {', '.join(sorted(unknown))}")
    built = BuiltOptions()
    o = built.handle
    if directory is not None:
        lib.shredkv_options_set_directory(o, encode_path(directory, "directory"))
    if key is not None:
        provider = as_key_provider(key)
        lib.shredkv_options_set_key_provider(o, provider._h)
        built.keepalive.append(provider)
    get = options.get
    if get("create") is not None and flag(options["create"], "create"):
        lib.shredkv_options_set_create_if_missing(o, 1)
    if get("read_only") is not None and flag(options["read_only"], "read_only"):
        lib.shredkv_options_set_read_only(o, 1)
    if get("durability") is not None:
        lib.shredkv_options_set_durability(o, int(Durability(options["durability"])))
    for name, (setter, conv) in _SIMPLE.items():
        value = get(name)
        if value is not None:
            getattr(lib, setter)(o, conv(value))
    custody = get("custody")
    if custody is not None:
        if not isinstance(custody, Custody):
            raise TypeError(f"custody is a shredkv.Custody (pkcs11_custody()), not {type(custody).__name__}")
        lib.shredkv_options_set_custody(o, custody._h)
        built.keepalive.append(custody)
    if get("identifier_types") is not None:
        for name, norm in _pairs(options["identifier_types"], "identifier_types"):
            lib.shredkv_options_add_identifier_type(o, encode_name(name), int(Normalization(norm)))
    def callback_handle(fn: Any, what: str) -> Any:
        # The callable's handle, kept alive as long as the store (ctx of its C callback).
        if not callable(fn):
            raise TypeError(what)
        h = ffi.new_handle(fn)
        built.keepalive.append(h)
        return h

    clock = get("clock")
    if clock is not None:
        h = callback_handle(clock, "clock is a callable returning ms since the epoch")
        lib.shredkv_options_set_clock(o, _clock_cb, h)
    progress = get("progress")
    if progress is not None:
        h = callback_handle(progress, "progress is a callable (operation, done, total)")
        lib.shredkv_options_set_progress(o, _progress_cb, h)
    logger = get("logger")
    if logger is not None:
        h = callback_handle(logger, "logger is a callable (level, message)")
        level = get("log_level")
        lib.shredkv_options_set_logger(o, _log_cb, h, int(LogLevel(level if level is not None else 1)))
    for listener in get("listeners") or ():
        cbs = ffi.new("shredkv_listener_callbacks_t*")
        any_set = False
        for attr, field, cb in _LISTENER_SLOTS:
            if _overrides(listener, attr):
                setattr(cbs, field, cb)
                any_set = True
        if not any_set:
            raise TypeError(f"{listener!r} has none of the Listener methods")
        h = ffi.new_handle(listener)  # an object, not a callable: kept alive like the callables' handles
        built.keepalive.append(h)
        lib.shredkv_options_add_listener(o, cbs, h)
    retention = get("retention")
    if retention is not None:
        r = build_retention(retention)
        lib.shredkv_options_set_retention(o, r)  # copied
        ffi.release(r)
    if get("purposes") is not None:
        for name, basis in _pairs(options["purposes"], "purposes"):
            lib.shredkv_options_add_purpose(o, encode_name(name), int(LawfulBasis(basis)))
    if get("categories") is not None:
        cats = options["categories"]
        if isinstance(cats, str):
            raise TypeError("categories is a sequence of names, not a single str")
        for name in cats:
            lib.shredkv_options_add_category(o, encode_name(name))
    for kw, setter in (("event_categories", lib.shredkv_options_set_event_category),
                       ("attribute_categories", lib.shredkv_options_set_attribute_category)):
        if get(kw) is not None:
            for name, category in _pairs(options[kw], kw):
                setter(o, encode_name(name), encode_name(category))
    if get("collection_categories") is not None:
        # Collections are data: any byte (outside audit 32a, F4).
        for name, category in _pairs(options["collection_categories"], "collection_categories"):
            cb = encode_text(name, "collection")
            lib.shredkv_options_set_collection_category_n(o, cb, len(cb), encode_name(category))
    return built
