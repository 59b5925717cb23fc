"""The cffi handle on libshredkv (ABI mode: no compiler at install time).

The library is found by the environment variable SHREDKV_LIBRARY (a path)
if it is set, else by the dynamic loader under its soname
``libshredkv.so.0`` (LD_LIBRARY_PATH, ld.so.cache, the default paths).
cffi releases the GIL around every call into the library.
"""
from __future__ import annotations

import os
from typing import Any

from cffi import FFI

from ._cdef import CDEF

SONAME = "libshredkv.so.0"
ENV_VAR = "SHREDKV_LIBRARY"

ffi = FFI()
ffi.cdef(CDEF)


def _load() -> Any:
    path = os.environ.get(ENV_VAR)
    if path:
        try:
            return ffi.dlopen(path)
        except OSError as e:
            raise ImportError(
                f"shredkv: cannot load the library {ENV_VAR}={path!r} names ({e}); "
                f"point {ENV_VAR} at libshredkv.so.0 (e.g. build/lib/libshredkv.so.0) "
                f"or unset it to load {SONAME} from the loader's search path"
            ) from e
    try:
        return ffi.dlopen(SONAME)
    except OSError as e:
        raise ImportError(
            f"shredkv: cannot load {SONAME} ({e}); install the library where the "
            f"dynamic loader finds it (or add its directory to LD_LIBRARY_PATH), or "
            f"set {ENV_VAR} to its path, e.g. {ENV_VAR}=build/lib/libshredkv.so.0"
        ) from e


lib: Any = _load()
NULL = ffi.NULL
