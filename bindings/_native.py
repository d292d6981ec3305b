"""libyang functions the `libyang` Python package does not declare, called through ctypes.

The CFFI module `_libyang` compiles only the functions its authors declared; a few that make
tree surgery O(1) instead of O(path length) are missing (sibling lookup by a node's own hash,
unlinking). They live in the same shared library the CFFI module links, so both see one
libyang. Pointers cross as integers. ctypes releases the GIL around each call, like CFFI.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from _libyang import ffi

_LIB = ctypes.CDLL(ctypes.util.find_library("yang") or "libyang.so.2")

_find_sibling_first = _LIB.lyd_find_sibling_first
_find_sibling_first.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p))
_find_sibling_first.restype = ctypes.c_int

_unlink_tree = _LIB.lyd_unlink_tree
_unlink_tree.argtypes = (ctypes.c_void_p,)
_unlink_tree.restype = None


def _addr(cdata) -> int:
    return int(ffi.cast("uintptr_t", cdata))


def find_sibling(first, like):
    """The instance among `first` and its siblings that equals `like` (same schema node, same
    keys or leaf-list value), found through the siblings' hash table; NULL when none."""
    out = ctypes.c_void_p()
    if _find_sibling_first(_addr(first), _addr(like), ctypes.byref(out)) != 0 or not out.value:
        return ffi.NULL
    return ffi.cast("struct lyd_node *", out.value)


def unlink(cdata) -> None:
    """Detach a subtree from its parent and siblings (it becomes a tree of its own)."""
    _unlink_tree(_addr(cdata))
