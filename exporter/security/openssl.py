"""Two OpenSSL calls Python's ``ssl`` module does not expose, made on its own ``SSL_CTX``.

- ``SSL_CTX_set1_groups_list``: Python 3.11 sets one ECDH curve at most; exporter-toolkit's
  ``curve_preferences`` is an ordered list.
- ``SSL_CTX_set_verify`` with a callback that accepts any certificate: Go's
  ``RequestClientCert`` and ``RequireAnyClientCert`` ask for a client certificate without
  verifying it, which Python's ``verify_mode`` cannot express.

The calls go to the OpenSSL library that ``_ssl`` is linked against, on the ``SSL_CTX`` pointer
that CPython keeps right after the object header of an ``SSLContext``. That layout is CPython's
private business, so it is checked before use: the pointer must report the verify mode the
context was just given. When the check fails (another interpreter, another layout) the
functions return False and the caller refuses the setting by name.
"""

from __future__ import annotations

import ctypes
import ssl
from typing import Final

_SSL_CTRL_SET_GROUPS_LIST: Final = 92
_SSL_VERIFY_PEER: Final = 0x01
_SSL_VERIFY_FAIL_IF_NO_PEER_CERT: Final = 0x02

_VerifyCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def _accept(_preverify_ok: int, _store: int | None) -> int:
    return 1  # the certificate is not verified: that is what these client auth types mean


# Kept at module level: OpenSSL holds the pointer for as long as any context uses it.
_ACCEPT_ANY: Final = _VerifyCallback(_accept)


def _library() -> ctypes.CDLL | None:
    try:
        lib = ctypes.CDLL(ssl._ssl.__file__)  # type: ignore[attr-defined]
        lib.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_get_verify_mode.restype = ctypes.c_int
        lib.SSL_CTX_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _VerifyCallback]
        lib.SSL_CTX_set_verify.restype = None
        lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long,
                                     ctypes.c_void_p]
        lib.SSL_CTX_ctrl.restype = ctypes.c_long
    except (OSError, AttributeError):
        return None
    return lib


_LIB: Final = _library()


def _ctx_pointer(context: ssl.SSLContext) -> int | None:
    """The ``SSL_CTX *`` of ``context``, or None when it cannot be found with certainty."""
    if _LIB is None or type(context).__basicsize__ < object.__basicsize__ + ctypes.sizeof(
            ctypes.c_void_p):
        return None
    pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    if not pointer:
        return None
    saved = context.verify_mode
    try:
        for mode, expected in ((ssl.CERT_OPTIONAL, _SSL_VERIFY_PEER),
                               (ssl.CERT_NONE, 0)):
            context.verify_mode = mode
            if _LIB.SSL_CTX_get_verify_mode(pointer) != expected:
                return None
    finally:
        context.verify_mode = saved
    return pointer


def set_groups(context: ssl.SSLContext, groups: list[str]) -> bool:
    """Set the key exchange groups in preference order (OpenSSL names such as ``P-256``)."""
    pointer = _ctx_pointer(context)
    if pointer is None or _LIB is None:
        return False
    return bool(_LIB.SSL_CTX_ctrl(pointer, _SSL_CTRL_SET_GROUPS_LIST, 0,
                                  ctypes.c_char_p(":".join(groups).encode("ascii"))))


def accept_any_client_certificate(context: ssl.SSLContext, *, require: bool) -> bool:
    """Ask clients for a certificate (``require``: refuse those without one), never verify it."""
    pointer = _ctx_pointer(context)
    if pointer is None or _LIB is None:
        return False
    mode = _SSL_VERIFY_PEER | (_SSL_VERIFY_FAIL_IF_NO_PEER_CERT if require else 0)
    _LIB.SSL_CTX_set_verify(pointer, mode, _ACCEPT_ANY)
    return True
