"""Conversions between Python values and the C API's: names, text, bytes,
attribute maps. The hot paths (attribute maps, names) are written for speed:
type dispatch by `type(v) is ...`, lib functions bound to module globals,
names encoded once and cached."""
from __future__ import annotations

import datetime as _dt
import operator
import threading
import weakref
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ._ffi import ffi, lib
from ._types import Identifier, Timestamp, Value, _datetime_to_ms

NULL = ffi.NULL
_new = ffi.new
_string = ffi.string
_unpack = ffi.unpack
_from_buffer = ffi.from_buffer
_SIZE_P = ffi.typeof("size_t*")
_CHAR_ARR = ffi.typeof("char[]")
_CHARP_ARR = ffi.typeof("char*[]")
_IDENT = ffi.typeof("shredkv_identifier_t")
_IDENT_P = ffi.typeof("shredkv_identifier_t*")
_IDENT_ARR = ffi.typeof("shredkv_identifier_t[]")

# ---- booleans ---------------------------------------------------------------------


def flag(value: Any, what: str) -> int:
    """A boolean argument as the C API's 0/1. Only a bool: by truthiness the
    text "false" (form or CSV input) would grant consent or suppress an
    identifier (outside audit 32a, F5)."""
    if value is True:
        return 1
    if value is False:
        return 0
    raise TypeError(f"{what} must be bool, not {type(value).__name__}")


# ---- text that is not UTF-8 -------------------------------------------------------

_str_encode = str.encode


def not_utf8(error: UnicodeEncodeError, what: str) -> ValueError:
    """The ValueError for text that cannot be encoded (a lone surrogate that
    surrogateescape does not map back, such as json.loads' "\\ud83d" of a
    cut-off emoji). Contract (Python audit 37a, F8): it names `what` and the
    position, never the text; raise it ``from None`` (Python's own
    UnicodeEncodeError carries the whole string in args and repr())."""
    return ValueError(f"{what} is not encodable as UTF-8 (lone surrogate at position {error.start})")


def utf8(value: str, what: str) -> bytes:
    """A str, or a str subclass by its own characters (str.encode, never its
    __str__ or an overridden encode: Python audit 37a, F4), as UTF-8 with
    surrogate escapes mapped back to their bytes. ValueError (not_utf8)
    for text that cannot be encoded."""
    try:
        return _str_encode(value, "utf-8", "surrogateescape")
    except UnicodeEncodeError as e:
        raise not_utf8(e, what) from None


def bytes_of(value: Any) -> bytes:
    """A bytes-like object's own bytes (the buffer, never a subclass's
    __bytes__: Python audit 37a, F4)."""
    if type(value) is bytes:
        return value
    with memoryview(value) as view:
        return view.tobytes()


# ---- names (NUL-terminated UTF-8) -------------------------------------------------

_NAME_CACHE: Dict[str, bytes] = {}
_NAME_C_CACHE: Dict[str, Any] = {}
_CACHE_LIMIT = 4096


def encode_name(name: str) -> bytes:
    """A name as NUL-terminated UTF-8 bytes (cached). TypeError unless str;
    ValueError for a NUL inside."""
    b = _NAME_CACHE.get(name)  # type: ignore[arg-type]
    if b is not None:
        return b
    if not isinstance(name, str):
        raise TypeError(f"names are str, not {type(name).__name__}")
    try:
        b = _str_encode(name, "utf-8")
    except UnicodeEncodeError as e:
        raise not_utf8(e, "a name") from None
    if b"\0" in b:
        raise ValueError(f"a name holds no NUL character: {name!r}")
    if len(_NAME_CACHE) >= _CACHE_LIMIT:
        _NAME_CACHE.clear()
    _NAME_CACHE[name] = b
    return b


def name_c(name: str) -> Any:
    """A name as a char[] cdata (cached), for arrays of names and struct fields."""
    c = _NAME_C_CACHE.get(name)  # type: ignore[arg-type]
    if c is not None:
        return c
    c = _new(_CHAR_ARR, encode_name(name))
    if len(_NAME_C_CACHE) >= _CACHE_LIMIT:
        _NAME_C_CACHE.clear()
    _NAME_C_CACHE[name] = c
    return c


def opt_name(name: Optional[str]) -> Any:
    """An optional name: None → NULL."""
    if name is None:
        return NULL
    return encode_name(name)


_ARRAY_CACHE: Dict[Tuple[str, ...], Tuple[Any, int, Tuple[Any, ...]]] = {}

# cffi does not keep alive what the pointers inside an array or a struct
# point to. Every array or struct built here over cached name buffers is a
# key of this map, with those buffers as its value, so they live exactly as
# long as the cdata a caller holds during its C call — a cache evicting them
# (another thread, or a later call of the same caller) cannot free memory
# the library is still reading.
_KEEP_ALIVE: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()
_KEEP_ALIVE_LOCK = threading.Lock()


def _hold(owner: Any, referents: Any) -> Any:
    with _KEEP_ALIVE_LOCK:
        _KEEP_ALIVE[owner] = referents
    return owner


def name_array(names: Iterable[str]) -> Tuple[Any, int]:
    """A `const char* const*` array of names and its length ((NULL, 0) when
    empty). Arrays are cached by their names (the elements stay alive with
    them), so a recurring list of names costs one lookup."""
    if not names:
        return NULL, 0
    key = names if type(names) is tuple else None
    if key is None:
        if isinstance(names, (str, bytes)):
            raise TypeError("expected a sequence of names, not a single string")
        key = tuple(names)
        if not key:
            return NULL, 0
    hit = _ARRAY_CACHE.get(key)  # type: ignore[arg-type]
    if hit is not None:
        return hit[0], hit[1]
    elems = tuple(name_c(n) for n in key)
    arr = _hold(_new(_CHARP_ARR, elems), elems)
    if len(_ARRAY_CACHE) >= _CACHE_LIMIT:
        _ARRAY_CACHE.clear()
    _ARRAY_CACHE[key] = (arr, len(key), elems)
    return arr, len(key)


def decode(p: Any) -> str:
    """A NUL-terminated string the library returned (borrowed); NULL → ""."""
    if not p:
        return ""
    return _string(p).decode("utf-8", "surrogateescape")


def decode_n(p: Any, n: int) -> str:
    """`n` bytes at `p` as text (surrogate escapes for non-UTF-8 bytes)."""
    if not n:
        return ""
    return _unpack(p, n).decode("utf-8", "surrogateescape")


def take_buffer(pp: Any, n: int) -> bytes:
    """Copies and frees a malloc'ed buffer (`pp` a char** the call filled)."""
    p = pp[0]
    if not p:
        return b""
    try:
        return _unpack(p, n)
    finally:
        lib.shredkv_free(p)


def take_string(pp: Any) -> str:
    """Decodes and frees a malloc'ed NUL-terminated string."""
    p = pp[0]
    if not p:
        return ""
    try:
        return _string(p).decode("utf-8", "surrogateescape")
    finally:
        lib.shredkv_free(p)


# ---- text and bytes data (pointer + length) --------------------------------------


def encode_text(value: str, what: str = "value") -> bytes:
    """Text data (identifier values, collections, origins) as UTF-8; lone
    surrogates from surrogateescape decoding map back to their bytes. A str
    subclass by its own characters (utf8())."""
    if isinstance(value, str):
        return utf8(value, what)
    raise TypeError(f"{what} must be str, not {type(value).__name__}")


def encode_text_or_bytes(value: Any, what: str = "value") -> bytes:
    t = type(value)
    if t is bytes:
        return value
    if isinstance(value, str):
        return utf8(value, what)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes_of(value)
    raise TypeError(f"{what} must be str or bytes, not {t.__name__}")


def encode_bytes(value: Any, what: str) -> bytes:
    """Binary data (record keys and values): bytes-like only; str is refused
    (encode it explicitly)."""
    if type(value) is bytes:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes_of(value)
    if isinstance(value, str):
        raise TypeError(f"{what} must be bytes, not str (encode it, e.g. {what}.encode())")
    raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


# ---- identifiers -----------------------------------------------------------------


def identifier_parts(identifier: Any) -> Tuple[Any, bytes]:
    """(type as a cached char[] cdata, value bytes) of an Identifier or a
    (type, value) tuple."""
    try:
        id_type, value = identifier
    except (TypeError, ValueError):
        raise TypeError(
            f"an identifier is an Identifier or a (type, value) tuple, not {type(identifier).__name__}"
        ) from None
    if isinstance(identifier, (str, bytes)):
        raise TypeError("an identifier is an Identifier or a (type, value) tuple, not a string")
    t = type(value)
    if t is bytes:
        vb = value
    else:
        vb = encode_text_or_bytes(value, "an identifier value")
    return name_c(id_type), vb


def identifier_struct(identifier: Any) -> Tuple[Any, Any]:
    """A shredkv_identifier_t* for one identifier, and what keeps its value
    alive (hold both until the call returns)."""
    tc, vb = identifier_parts(identifier)
    vc = _from_buffer(vb)
    return _hold(_new(_IDENT_P, (tc, vc, len(vb))), (tc, vc)), vc


def identifier_array(identifiers: Iterable[Any]) -> Tuple[Any, int, List[Any]]:
    """A shredkv_identifier_t[] for several identifiers, its length, and the
    values' keep-alives."""
    if isinstance(identifiers, (str, bytes)) or (
            isinstance(identifiers, tuple) and len(identifiers) == 2 and isinstance(identifiers[0], str)):
        raise TypeError("identifiers is a list of identifiers: wrap a single one in a list")
    items = []
    keep = []
    for ident in identifiers:
        tc, vb = identifier_parts(ident)
        vc = _from_buffer(vb)
        keep.append(vc)
        keep.append(tc)
        items.append((tc, vc, len(vb)))
    return _hold(_new(_IDENT_ARR, items), tuple(keep)), len(items), keep


def read_identifier(type_p: Any, value_pp: Any, len_p: Any) -> Identifier:
    return Identifier(decode(type_p), decode_n(value_pp[0], len_p[0]))


# ---- attribute maps ------------------------------------------------------------------

_attrs_create = lib.shredkv_attrs_create
_attrs_destroy = lib.shredkv_attrs_destroy
_attrs_clear = lib.shredkv_attrs_clear
_set_string = lib.shredkv_attrs_set_string
_set_int64 = lib.shredkv_attrs_set_int64
_set_double = lib.shredkv_attrs_set_double
_set_bool = lib.shredkv_attrs_set_bool
_set_timestamp = lib.shredkv_attrs_set_timestamp
_set_bytes = lib.shredkv_attrs_set_bytes
_attrs_count = lib.shredkv_attrs_count
_attrs_name = lib.shredkv_attrs_name
_attrs_type = lib.shredkv_attrs_type
_attrs_data = lib.shredkv_attrs_data
_attrs_int64 = lib.shredkv_attrs_int64
_attrs_double = lib.shredkv_attrs_double
_NAMES = _NAME_CACHE


_int_value = int.__index__
_float_value = float.__float__


def _set_slow(a: Any, nb: bytes, v: Any, name: str) -> None:
    """Values that are not exactly str/int/float/bool/bytes/Timestamp:
    subclasses (bool before int: a bool is an int), datetimes, bytes-likes.
    Contract (Python audit 37a, F4): a subclass of str, int, float or bytes
    is stored as the value it holds, read with the base type's own method
    (int.__index__, float.__float__, str.encode, its buffer), never through
    __str__ / __int__ / __float__ / __bytes__ / __index__ it may override
    (a (str, Enum) member's __str__ is "Plan.PREMIUM", a redacting
    wrapper's "***")."""
    if isinstance(v, bool):
        _set_bool(a, nb, 1 if v else 0)
    elif isinstance(v, int):
        _set_int64(a, nb, _int_value(v))
    elif isinstance(v, float):
        _set_double(a, nb, _float_value(v))
    elif isinstance(v, str):
        vb = utf8(v, f"the value of {name!r}")
        _set_string(a, nb, vb, len(vb))
    elif isinstance(v, (bytes, bytearray, memoryview)):
        vb = bytes_of(v)
        _set_bytes(a, nb, vb, len(vb))
    elif isinstance(v, Timestamp):
        _set_timestamp(a, nb, v.ms)
    elif isinstance(v, _dt.datetime):
        _set_timestamp(a, nb, _datetime_to_ms(v))
    elif hasattr(type(v), "__index__"):  # integer types of other libraries (numpy.int64, ...)
        _set_int64(a, nb, operator.index(v))
    else:
        raise TypeError(
            f"attribute values are str, bytes, bool, int, float, Timestamp or an aware datetime, "
            f"not {type(v).__name__}"
        )


def fill_attrs(a: Any, values: Mapping[str, Value]) -> None:
    """Sets every item of `values` in the attrs handle `a` (not cleared
    first). int outside int64: OverflowError."""
    names = _NAMES
    for name, v in values.items():
        nb = names.get(name)
        if nb is None:
            nb = encode_name(name)
        t = type(v)
        if t is str:
            try:
                vb = v.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError as e:
                raise not_utf8(e, f"the value of {name!r}") from None
            _set_string(a, nb, vb, len(vb))
        elif t is int:
            _set_int64(a, nb, v)
        elif t is float:
            _set_double(a, nb, v)
        elif t is bool:
            _set_bool(a, nb, v)
        elif t is bytes:
            _set_bytes(a, nb, v, len(v))
        elif t is Timestamp:
            _set_timestamp(a, nb, v._ms)
        else:
            _set_slow(a, nb, v, name)


class AttrsScope:
    """An attrs handle for one call: `with AttrsScope(mapping) as a:` gives
    the handle (NULL for None) and destroys it afterwards."""

    __slots__ = ("_a",)

    def __init__(self, values: Optional[Mapping[str, Value]]) -> None:
        self._a = NULL
        if values is not None:
            if not isinstance(values, Mapping):
                raise TypeError(f"attributes are a mapping of name to value, not {type(values).__name__}")
            a = _attrs_create()
            try:
                fill_attrs(a, values)
            except BaseException:
                _attrs_destroy(a)
                raise
            self._a = a

    def __enter__(self) -> Any:
        return self._a

    def __exit__(self, *exc: Any) -> None:
        a, self._a = self._a, NULL
        if a:
            _attrs_destroy(a)


_ts_new = object.__new__
_ts_set = Timestamp.__dict__["_ms"].__set__


def make_timestamp(ms: int) -> Timestamp:
    t = _ts_new(Timestamp)
    _ts_set(t, ms)
    return t


def read_attrs(a: Any) -> Dict[str, Value]:
    """A borrowed or owned attrs handle as a dict (in name order)."""
    out: Dict[str, Value] = {}
    if not a:
        return out
    n = _attrs_count(a)
    if not n:
        return out
    lp = _new(_SIZE_P)
    for i in range(n):
        name = _string(_attrs_name(a, i)).decode("utf-8", "surrogateescape")
        t = _attrs_type(a, i)
        if t == 1:  # STRING
            p = _attrs_data(a, i, lp)
            out[name] = _unpack(p, lp[0]).decode("utf-8", "surrogateescape") if lp[0] else ""
        elif t == 2:  # INT64
            out[name] = _attrs_int64(a, i)
        elif t == 3:  # DOUBLE
            out[name] = _attrs_double(a, i)
        elif t == 4:  # BOOL
            out[name] = _attrs_int64(a, i) != 0
        elif t == 5:  # TIMESTAMP
            out[name] = make_timestamp(_attrs_int64(a, i))
        elif t == 6:  # BYTES
            p = _attrs_data(a, i, lp)
            out[name] = _unpack(p, lp[0]) if lp[0] else b""
        else:
            raise ValueError(f"attribute {name!r} has a value type this binding does not know ({t})")
    return out


def names_list(count: int, get: Any) -> Tuple[str, ...]:
    return tuple(decode(get(i)) for i in range(count))


def unset_array(unset: Sequence[str]) -> Tuple[Any, int]:
    if isinstance(unset, str):
        raise TypeError("unset is a sequence of names, not a single str")
    return name_array(tuple(unset) if unset else ())
