"""Value types of the Python API: IDs, identifiers, timestamps, enums and the
result dataclasses. Mirrors include/shredkv/types.h and friends."""
from __future__ import annotations

import datetime as _dt
import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

from ._ffi import ffi, lib

# ---- person IDs ---------------------------------------------------------------

_PID_P = ffi.typeof("shredkv_person_id_t*")
_new_cdata = ffi.new
_buffer = ffi.buffer
_memmove = ffi.memmove
_object_new = object.__new__


class PersonId:
    """A person's ID: 16 random bytes, printed as 32 lowercase hex digits.

    Immutable and hashable; equal when the bytes are equal. Build one with
    ``PersonId(b16)`` or ``PersonId.from_hex(text)``; ``str(pid)`` (or
    ``pid.hex()``) gives the hex digits, ``pid.bytes`` the raw bytes. The
    all-zero ID is "no person" and is falsy.
    """

    __slots__ = ("_c", "_b")
    _c: Any  # shredkv_person_id_t* (owned cdata), what the C calls take
    _b: bytes

    def __init__(self, value: Union[bytes, bytearray, memoryview]) -> None:
        # Contract (Python audit 37a, F6): only bytes-like values. bytes(n)
        # would make n zero bytes: PersonId(16) the "no person" ID, and an
        # application's integer row id a multi-gigabyte allocation.
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"a PersonId is made of 16 bytes (bytes, bytearray, memoryview), "
                            f"not {type(value).__name__}")
        with memoryview(value) as view:
            b = view.tobytes()
        if len(b) != 16:
            raise ValueError(f"a PersonId is 16 bytes, not {len(b)}")
        c = _new_cdata(_PID_P)
        _memmove(c, b, 16)
        _set_c(self, c)
        _set_b(self, b)

    @classmethod
    def from_hex(cls, text: str) -> "PersonId":
        """Parses 32 hex digits (shredkv_person_id_from_hex); InvalidArgument
        (also a ValueError) otherwise."""
        from ._errors import raise_error

        if not isinstance(text, str):
            raise TypeError(f"from_hex takes a str, not {type(text).__name__}")
        raw = text.encode("utf-8")
        if b"\0" in raw:
            raise ValueError("a person ID in hex holds no NUL")
        c = _new_cdata(_PID_P)
        err = _new_cdata("char**")
        rc = lib.shredkv_person_id_from_hex(raw, c, err)
        if rc:
            raise_error(rc, err)
        return _pid_from_c(c)

    @property
    def bytes(self) -> bytes:
        try:
            return self._b
        except AttributeError:
            b = _buffer(self._c)[:]
            _set_b(self, b)
            return b

    def hex(self) -> str:
        """32 lowercase hex digits (as shredkv_person_id_to_hex writes)."""
        return self.bytes.hex()

    def __str__(self) -> str:
        return self.bytes.hex()

    def __repr__(self) -> str:
        return f"PersonId('{self.bytes.hex()}')"

    def __eq__(self, other: object) -> bool:
        if type(other) is PersonId:
            return self.bytes == other.bytes
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if type(other) is PersonId:
            return self.bytes != other.bytes
        return NotImplemented

    def __lt__(self, other: "PersonId") -> bool:
        if type(other) is PersonId:
            return self.bytes < other.bytes
        return NotImplemented

    def __hash__(self) -> int:
        return hash((PersonId, self.bytes))

    def __bool__(self) -> bool:
        return self.bytes != bytes(16)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("PersonId is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("PersonId is immutable")

    def __reduce__(self) -> Any:
        return (PersonId, (self.bytes,))

    def __copy__(self) -> "PersonId":
        return self

    def __deepcopy__(self, memo: Any) -> "PersonId":
        return self


# The slots' own setters bypass the immutability guard (internal use only).
_set_c = PersonId.__dict__["_c"].__set__
_set_b = PersonId.__dict__["_b"].__set__


def _pid_from_c(c: Any) -> PersonId:
    """A PersonId that owns `c` (a shredkv_person_id_t* the caller no longer
    touches). The hot path: no copy."""
    p = _object_new(PersonId)
    _set_c(p, c)
    return p


def _pid_copy(c: Any) -> PersonId:
    """A PersonId holding a copy of the borrowed shredkv_person_id_t at `c`."""
    return PersonId(_buffer(c, 16)[:])


# ---- identifiers and timestamps ------------------------------------------------


class Identifier(NamedTuple):
    """An identifier of a person: a type ("email") and a value. Any
    ``(type, value)`` tuple is accepted where an Identifier is; the value
    may be str (encoded as UTF-8) or bytes. Values read back from the store
    are str (bytes that are not UTF-8 come back with surrogate escapes,
    which write back byte for byte)."""

    type: str
    value: Union[str, bytes]


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_MS = _dt.timedelta(milliseconds=1)


def _datetime_to_ms(value: _dt.datetime) -> int:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(
            "a naive datetime has no defined instant: give it a tzinfo "
            "(e.g. datetime.timezone.utc) or pass shredkv.Timestamp(ms)"
        )
    return (value - _EPOCH) // _MS


class Timestamp:
    """A TIMESTAMP value: milliseconds since the Unix epoch, UTC.

    ``Timestamp(ms)``; ``Timestamp.from_datetime(aware_datetime)``;
    ``Timestamp.now()``; ``ts.ms``; ``ts.to_datetime()`` (aware, UTC).
    Immutable, hashable, ordered. As attribute values an aware
    ``datetime.datetime`` is also accepted and stored as a Timestamp
    (floored to the millisecond).
    """

    __slots__ = ("_ms",)
    _ms: int

    def __init__(self, ms: int) -> None:
        if isinstance(ms, bool) or not isinstance(ms, int):
            raise TypeError(f"Timestamp takes int milliseconds, not {type(ms).__name__}")
        ms = int.__index__(ms)  # an int subclass's own value, not its __int__ (Python audit 37a, F4)
        if not -(1 << 63) <= ms < (1 << 63):
            raise OverflowError("a Timestamp is a signed 64-bit count of milliseconds")
        object.__setattr__(self, "_ms", ms)

    @property
    def ms(self) -> int:
        return self._ms

    @classmethod
    def from_datetime(cls, value: _dt.datetime) -> "Timestamp":
        return cls(_datetime_to_ms(value))

    @classmethod
    def now(cls) -> "Timestamp":
        return cls(_datetime_to_ms(_dt.datetime.now(_dt.timezone.utc)))

    def to_datetime(self) -> _dt.datetime:
        """An aware datetime in UTC (OverflowError outside datetime's range)."""
        return _EPOCH + _dt.timedelta(milliseconds=self._ms)

    def __int__(self) -> int:
        return self._ms

    def __index__(self) -> int:
        return self._ms

    def __repr__(self) -> str:
        return f"Timestamp({self._ms})"

    def __eq__(self, other: object) -> bool:
        if type(other) is Timestamp:
            return self._ms == other._ms
        return NotImplemented

    def __lt__(self, other: "Timestamp") -> bool:
        if type(other) is Timestamp:
            return self._ms < other._ms
        return NotImplemented

    def __le__(self, other: "Timestamp") -> bool:
        if type(other) is Timestamp:
            return self._ms <= other._ms
        return NotImplemented

    def __gt__(self, other: "Timestamp") -> bool:
        if type(other) is Timestamp:
            return self._ms > other._ms
        return NotImplemented

    def __ge__(self, other: "Timestamp") -> bool:
        if type(other) is Timestamp:
            return self._ms >= other._ms
        return NotImplemented

    def __hash__(self) -> int:
        return hash((Timestamp, self._ms))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Timestamp is immutable")

    def __reduce__(self) -> Any:
        return (Timestamp, (self._ms,))


# An attribute value as the API takes and returns it.
Value = Union[str, bytes, bool, int, float, Timestamp]
Attributes = Dict[str, Value]


def _to_ms(value: Union[int, Timestamp, _dt.datetime]) -> int:
    """A time argument (int ms, Timestamp or aware datetime) as int ms."""
    t = type(value)
    if t is int:
        return value  # type: ignore[return-value]
    if t is Timestamp:
        return value._ms  # type: ignore[union-attr]
    if isinstance(value, _dt.datetime):
        return _datetime_to_ms(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"a time is int ms, a Timestamp or an aware datetime, not {t.__name__}")
    return int.__index__(value)  # an int subclass's own value, not its __int__ (Python audit 37a, F4)


# ---- enums (values as in c.h) ----------------------------------------------------


class _Named(enum.IntEnum):
    """An enum whose ``label`` is the library's stable short name."""

    @property
    def label(self) -> str:
        fn = getattr(lib, self._name_fn())  # type: ignore[attr-defined]
        return ffi.string(fn(int(self))).decode("ascii")

    @classmethod
    def _name_fn(cls) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    @classmethod
    def _of(cls, value: int) -> Any:
        try:
            return cls(value)
        except ValueError:
            return value  # a value newer than this binding: the bare int


class ValueType(enum.IntEnum):
    STRING = 1
    INT64 = 2
    DOUBLE = 3
    BOOL = 4
    TIMESTAMP = 5
    BYTES = 6


class AnalyticsOnErase(_Named):
    KEEP = 0
    UNLINK = 1
    DELETE = 2

    @classmethod
    def _name_fn(cls) -> str:
        return "shredkv_analytics_on_erase_name"


class ErasureLevel(_Named):
    LOGICAL = 1
    CRYPTOGRAPHIC = 2
    PURGED = 3

    @classmethod
    def _name_fn(cls) -> str:
        return "shredkv_erasure_level_name"


class NoticeKind(_Named):
    RECTIFICATION = 1
    ERASURE = 2
    RESTRICTION = 3
    IMPORT = 4
    RECORD_CHANGE = 5

    @classmethod
    def _name_fn(cls) -> str:
        return "shredkv_notice_kind_name"


class ConsentAction(enum.IntEnum):
    GRANT = 1
    WITHDRAW = 2
    RESTRICT = 3
    UNRESTRICT = 4


class AuditAction(_Named):
    ERASE = 1
    UNSUPPRESS = 2
    ROTATION = 3
    PURGE = 4
    COMPACTION = 5
    SWEEP = 6
    ERASE_CATEGORY = 7
    PROCESSING_READ = 8

    @classmethod
    def _name_fn(cls) -> str:
        return "shredkv_audit_action_name"


class Durability(enum.IntEnum):
    FULL_SYNC = 0
    NO_META_SYNC = 1
    NO_SYNC = 2


class Cipher(enum.IntEnum):
    AUTO = 0
    XCHACHA20_POLY1305 = 1
    AES256_GCM = 2


class Normalization(enum.IntEnum):
    EXACT = 0
    TRIM = 1
    LOWER_TRIM = 2
    EMAIL = 3
    PHONE = 4


class LawfulBasis(enum.IntEnum):
    CONSENT = 1
    CONTRACT = 2
    LEGITIMATE_INTEREST = 3
    LEGAL_OBLIGATION = 4
    VITAL_INTEREST = 5
    PUBLIC_TASK = 6


class TrackingPolicy(enum.IntEnum):
    REJECT = 0
    DROP = 1


class LogLevel(enum.IntEnum):
    DEBUG = 0
    INFO = 1
    WARN = 2
    ERROR = 3


class MaintenanceJob(_Named):
    PURGE = 1
    ROTATION = 2
    COMPACTION = 3
    SWEEP = 4
    ANALYTICS = 5
    ORPHAN_KEYS = 6

    @classmethod
    def _name_fn(cls) -> str:
        return "shredkv_maintenance_job_name"


class ExportKind(enum.IntEnum):
    PERSON = 0
    IDENTIFIER = 1
    PROFILE = 2
    RESTRICTION = 3
    CONSENT = 4
    EVENT = 5
    RECORD = 6
    ANALYTICS = 7
    NOTICE = 8


class RestoredCustodyKeys(enum.IntEnum):
    UNSPECIFIED = 0
    TAKE_OVER = 1
    NEW_KEYS = 2


# ---- records, events, analytics ---------------------------------------------------


@dataclass
class RecordMetadata:
    """What a record is for and where it came from (RecordMetadata)."""

    purposes: List[str] = field(default_factory=list)
    origin: str = ""
    shared_with: List[str] = field(default_factory=list)
    automated_decision: bool = False
    expires_ms: int = 0

    def empty(self) -> bool:
        return (not self.purposes and not self.origin and not self.shared_with
                and not self.automated_decision and self.expires_ms == 0)


@dataclass
class Record:
    """A person-scoped record: key and value are bytes, the collection a str.
    `category` "" (on write): the collection's declared category, or the
    record's own on an update."""

    collection: str
    key: bytes
    value: bytes
    category: str = ""
    metadata: RecordMetadata = field(default_factory=RecordMetadata)


class FoundRecord(NamedTuple):
    """An item of Store.find_records: the record and its owner."""

    person: PersonId
    record: Record


@dataclass
class StoredEvent:
    """An event as read back; `seq` orders events of the same time."""

    name: str
    ts_ms: int
    seq: int
    properties: Dict[str, Value]
    category: str


@dataclass
class AnalyticsRow:
    """An analytics row: no personal data. `anon_id` is 16 bytes."""

    anon_id: bytes
    name: str
    ts_ms: int
    seq: int
    fields: Dict[str, Value]


@dataclass(frozen=True)
class PersonInfo:
    """What the store holds about a person besides profile, events and
    records. `anon_id` is the analytics ID's 16 bytes."""

    id: PersonId
    anon_id: bytes
    created_ms: int
    key_epoch: int
    identifiers: Tuple[Identifier, ...]


@dataclass(frozen=True)
class Notice:
    """A change-feed notice: what changed for whom, never the values."""

    cursor: int
    kind: NoticeKind
    person: PersonId
    time_ms: int
    names: Tuple[str, ...]


@dataclass(frozen=True)
class RestrictionState:
    all: bool
    purposes: Tuple[str, ...]
    categories: Tuple[str, ...]
    updated_ms: int


@dataclass(frozen=True)
class ConsentRecord:
    """One consent decision or restriction change of the history."""

    action: ConsentAction
    purpose: str
    all: bool
    purposes: Tuple[str, ...]
    categories: Tuple[str, ...]
    reason: str
    time_ms: int
    source: str


@dataclass(frozen=True)
class ExportItem:
    """An item of Store.export. `value` by kind: PERSON PersonInfo,
    IDENTIFIER Identifier, PROFILE dict, RESTRICTION RestrictionState,
    CONSENT ConsentRecord, EVENT StoredEvent, RECORD Record, ANALYTICS
    AnalyticsRow, NOTICE Notice."""

    kind: ExportKind
    value: Any


class ImportResult(NamedTuple):
    person: PersonId
    identifiers: int
    events: int
    records: int


# ---- erasure, housekeeping, audit -------------------------------------------------


@dataclass(frozen=True)
class ErasureReceipt:
    """The proof of one erasure request. Holds nothing personal."""

    request_id: str
    erased_at_ms: int
    people: int
    analytics: AnalyticsOnErase
    suppressed: bool
    level: ErasureLevel
    cryptographic: bool
    purged: bool
    key_epoch: int
    audit_hash: str
    category: str  # a category erasure's category; "" for whole people


@dataclass(frozen=True)
class PurgeResult:
    rows_deleted: int
    people_purged: int
    people_pending: int


@dataclass(frozen=True)
class SweepResult:
    events_deleted: int
    records_deleted: int
    analytics_deleted: int
    batches: int
    pending: int
    seeks: int
    entries_read: int
    notices_deleted: int = 0  # change-feed notices past Retention.feed


@dataclass(frozen=True)
class RotationResult:
    new_epoch: int
    destroyed_epochs: int
    rewrapped_keys: int
    batches: int
    keys_file_bytes_before: int
    keys_file_bytes_after: int


@dataclass(frozen=True)
class CompactionResult:
    file_bytes_before: int
    file_bytes_after: int


@dataclass(frozen=True)
class AuditVerification:
    entries: int
    intact: bool
    head_hash: str
    problem: str


@dataclass(frozen=True)
class AuditRecord:
    """An audit log entry; `analytics` is None except for erasures."""

    seq: int
    action: AuditAction
    time_ms: int
    request_id: str
    count1: int
    count2: int
    analytics: Optional[AnalyticsOnErase]
    purpose: str
    subject: str
    hash: str


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    pages: int
    people: int
    identifiers: int
    events: int
    records: int
    analytics_rows: int
    audit_entries: int
    orphan_keys: int
    problem_count: int
    problems: Tuple[str, ...]


@dataclass(frozen=True)
class OperationStats:
    """Calls of one operation since open. Quantiles are upper bounds of the
    latency bucket holding them, in µs (0 with no calls; 2**64-1 in the
    last bucket)."""

    name: str
    calls: int
    errors: int
    total_us: int
    p50_us: int
    p90_us: int
    p99_us: int
    max_us: int


@dataclass(frozen=True)
class MaintenanceInfo:
    """One maintenance job's run, as Listener.maintenance_completed sees it.
    `code` is the job's status code (0: OK)."""

    job: MaintenanceJob
    background: bool
    code: int
    duration_us: int
    done: int
    pending: int


@dataclass
class Retention:
    """Retention rules: maximum ages in ms per event name, per record
    collection, for analytics rows and for change-feed notices, read or not
    (0: keep; notices: until acknowledged)."""

    events: Dict[str, int] = field(default_factory=dict)
    collections: Dict[str, int] = field(default_factory=dict)
    analytics: int = 0
    feed: int = 0


# ---- backups and the erasure log ---------------------------------------------------


@dataclass(frozen=True)
class BackupInfo:
    directory: str
    store_id: str
    created_ms: int
    current_epoch: int
    oldest_epoch: int
    people: int
    keys_bytes: int
    data_bytes: int
    custody_labels: Tuple[str, ...]


@dataclass(frozen=True)
class ErasedPerson:
    person: PersonId
    request_id: str
    erased_at_ms: int
    analytics: AnalyticsOnErase


@dataclass(frozen=True)
class ErasedCategory:
    person: PersonId
    category: str
    request_id: str
    erased_at_ms: int
    analytics: AnalyticsOnErase


@dataclass(frozen=True)
class SuppressedIdentifier:
    identifier_hash: bytes  # 16 bytes, keyed: meaningful to copies of the store only
    request_id: str
    suppressed_at_ms: int


@dataclass(frozen=True)
class ErasureLogApplied:
    people_erased: int
    categories_erased: int
    suppressions_added: int
    already_erased: int
    not_present: int


@dataclass(frozen=True)
class RestoreResult:
    backup: BackupInfo
    applied: ErasureLogApplied
