"""Secrets: ``secret_common``, ``secret``, ``secret_keyring`` (QEMU's ``crypto/secret*.c``).

A secret holds bytes (a password, a key) that other objects look up by id
(:func:`lookup_secret`, QEMU's ``qcrypto_secret_lookup``).  ``complete()``
loads them, in QEMU 7.2's order and with its messages:

1. ``secret`` reads ``data`` (the string itself) or ``file`` (the whole file;
   ``'file' and 'data' are mutually exclusive``, ``Either 'file' or 'data'
   must be provided``, ``Unable to read <file>: <GLib's message>``);
2. with ``keyid``, the bytes are AES-256-CBC ciphertext (``format=base64``:
   base64 of it), decrypted with the 32-byte secret ``keyid`` and the
   base64 ``iv`` (16 bytes); the PKCS#7-style padding count is checked and
   dropped;
3. else with ``format=base64`` the bytes are base64-decoded.

Base64 is decoded as QEMU's ``qbase64_decode`` does: only ``A-Z a-z 0-9 + / =``
and newlines are allowed, embedded NULs are refused, and the rest is GLib's
lenient ``g_base64_decode`` (``=`` anywhere, a trailing partial group dropped).

AES comes from the host's OpenSSL ``libcrypto`` through :mod:`ctypes` (the
standard library has no AES); where it cannot be loaded, decrypting fails
with ``AES-256-CBC is not available: <reason>`` (pyqom's words).

``secret_keyring`` reads the key ``serial`` from the kernel's key
retention service (``keyctl(KEYCTL_READ)``: ``Unable to read serial key
<serial as %08x>: <strerror>``).

``loaded`` is read-only, true once the data is loaded; ``object-add`` takes
it (a deprecated QAPI member) and refuses it, as QEMU 7.2 does.
"""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Any, Final

import attrs

from plugins import hookimpl
from qom import (
    BOOL,
    INT32,
    STR,
    TYPE_USER_CREATABLE,
    EnumKind,
    Object,
    ObjectClass,
    ObjectTree,
    Property,
    QomError,
    TypeInfo,
    TypeRegistry,
)

TYPE_SECRET_COMMON: Final = "secret_common"
TYPE_SECRET: Final = "secret"
TYPE_SECRET_KEYRING: Final = "secret_keyring"
#: x86-64 syscall number of keyctl(2), and its KEYCTL_READ operation.
_SYS_KEYCTL: Final = 250
_KEYCTL_READ: Final = 11
SECRET_FORMAT: Final = EnumKind("QCryptoSecretFormat", ("raw", "base64"))
AES_KEY_SIZE: Final = 32
AES_BLOCK_SIZE: Final = 16

_BASE64_VALID: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n")
_BASE64_RANK: Final = {c: i for i, c in enumerate(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")} | {ord("="): 0}


def glib_base64_decode(text: bytes) -> bytes:
    """GLib's ``g_base64_decode``: lenient, as QEMU uses it after its own checks.

    Characters outside the alphabet are skipped; every 4 alphabet characters
    (``=`` counts, as 0) give 3 bytes, minus one for each of the last two
    that is ``=``; a trailing group of fewer than 4 is dropped.
    """
    out = bytearray()
    value = count = 0
    last = previous = 0
    for char in text:
        rank = _BASE64_RANK.get(char)
        if rank is None:
            continue
        previous, last = last, char
        value = ((value << 6) | rank) & 0xFFFFFF
        count += 1
        if count == 4:
            out.append(value >> 16)
            if previous != ord("="):
                out.append((value >> 8) & 0xFF)
            if last != ord("="):
                out.append(value & 0xFF)
            count = 0
    return bytes(out)


def qbase64_decode(data: bytes, *, nul_terminated: bool) -> bytes:
    """QEMU's ``qbase64_decode``: its checks and messages, then GLib's decoding.

    :param nul_terminated: the input is a C string (``in_len == -1``): it ends
        at its first NUL; otherwise an embedded NUL is an error.
    """
    if nul_terminated:
        data = data.split(b"\0", 1)[0]
    elif b"\0" in data:
        raise QomError("Base64 data contains embedded NUL characters")
    if not _BASE64_VALID.issuperset(data):
        raise QomError("Base64 data contains invalid characters")
    return glib_base64_decode(data)


# ---------------------------------------------------------------------------
# AES-256-CBC through the host's libcrypto
# ---------------------------------------------------------------------------


def _libcrypto() -> ctypes.CDLL:
    # Imported here: ctypes.util imports tempfile and shutil, which start-up does
    # not need (tests/pyqom/test_startup_imports.py).
    import ctypes.util

    name = ctypes.util.find_library("crypto") or "libcrypto.so.3"
    try:
        lib = ctypes.CDLL(name)
        lib.EVP_aes_256_cbc.restype = ctypes.c_void_p
        lib.EVP_CIPHER_CTX_new.restype = ctypes.c_void_p
    except (OSError, AttributeError) as err:
        raise QomError(f"AES-256-CBC is not available: {err}") from err
    lib.EVP_CIPHER_CTX_free.argtypes = [ctypes.c_void_p]
    lib.EVP_DecryptInit_ex.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                       ctypes.c_char_p, ctypes.c_char_p]
    lib.EVP_CIPHER_CTX_set_padding.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.EVP_DecryptUpdate.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                      ctypes.POINTER(ctypes.c_int), ctypes.c_char_p,
                                      ctypes.c_int]
    return lib


def aes_256_cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """Decrypt whole blocks with AES-256 in CBC mode, padding left in place."""
    if len(ciphertext) % AES_BLOCK_SIZE:
        raise QomError(f"Length {len(ciphertext)} must be a multiple of block size "
                       f"{AES_BLOCK_SIZE}")
    if not ciphertext:
        return b""
    lib = _libcrypto()
    ctx = lib.EVP_CIPHER_CTX_new()
    if not ctx:
        raise QomError(f"AES-256-CBC is not available: {os.strerror(errno.ENOMEM)}")
    try:
        out = ctypes.create_string_buffer(len(ciphertext) + AES_BLOCK_SIZE)
        written = ctypes.c_int(0)
        if (lib.EVP_DecryptInit_ex(ctx, lib.EVP_aes_256_cbc(), None, key, iv) != 1
                or lib.EVP_CIPHER_CTX_set_padding(ctx, 0) != 1
                or lib.EVP_DecryptUpdate(ctx, out, ctypes.byref(written), ciphertext,
                                         len(ciphertext)) != 1):
            raise QomError("Cannot decrypt data")
        return out.raw[:written.value]
    finally:
        lib.EVP_CIPHER_CTX_free(ctx)


# ---------------------------------------------------------------------------
# The types
# ---------------------------------------------------------------------------


@attrs.define(eq=False, repr=False)
class SecretCommon(Object):
    """The abstract ``secret_common``: ``format``, ``keyid``, ``iv`` and the loaded bytes."""

    format: str = "raw"
    keyid: str | None = None
    iv: str | None = None
    #: the secret's bytes once loaded (QEMU's ``rawdata``), else ``None``
    raw_data: bytes | None = attrs.field(default=None, init=False)

    def load_data(self) -> bytes:
        """The bytes as given (subclasses); raise with QEMU's message."""
        raise QomError(f"{self.type_name} provides no 'load_data' method'")

    def complete(self) -> None:
        """user-creatable: load, then decrypt (``keyid``) or decode (``base64``)."""
        data = self.load_data()
        if self.keyid is not None:
            data = self._decrypt(data)
        elif self.format == "base64":
            data = qbase64_decode(data, nul_terminated=False)
        self.raw_data = data

    def _decrypt(self, data: bytes) -> bytes:
        assert self.keyid is not None
        if self.tree is None:
            raise QomError(f"No secret with id '{self.keyid}'")
        key = lookup_secret(self.tree, self.keyid)
        if len(key) != AES_KEY_SIZE:
            raise QomError(f"Key should be {AES_KEY_SIZE} bytes in length")
        if self.iv is None:
            raise QomError("IV is required to decrypt secret")
        iv = qbase64_decode(self.iv.encode(), nul_terminated=True)
        if len(iv) != AES_BLOCK_SIZE:
            raise QomError(f"IV should be {AES_BLOCK_SIZE} bytes in length not {len(iv)}")
        if self.format == "base64":
            data = qbase64_decode(data, nul_terminated=False)
        plain = aes_256_cbc_decrypt(key, iv, data)
        if not plain:
            # QEMU reads the byte before its buffer here; it was 0 when tried.
            return b""
        pad = plain[-1]
        if pad > AES_BLOCK_SIZE or pad > len(plain):
            raise QomError(f"Incorrect number of padding bytes ({pad}) found on decrypted data")
        return plain[:len(plain) - pad]


@attrs.define(eq=False, repr=False)
class Secret(SecretCommon):
    """``secret``: the bytes of ``data`` or of the file ``file``."""

    data: str | None = None
    file: str | None = None

    def load_data(self) -> bytes:
        """QEMU's ``qcrypto_secret_load_data``."""
        if self.file is not None:
            if self.data is not None:
                raise QomError("'file' and 'data' are mutually exclusive")
            return read_file_contents(self.file)
        if self.data is not None:
            # A C string: the data ends at its first NUL.
            return self.data.encode().split(b"\0", 1)[0]
        raise QomError("Either 'file' or 'data' must be provided")


def read_file_contents(path: str) -> bytes:
    """GLib's ``g_file_get_contents`` with QEMU's ``Unable to read`` wrapping."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise QomError(f"Unable to read {path}: Failed to open file \u201c{path}\u201d: "
                       f"{os.strerror(err.errno or 0)}") from err
    try:
        chunks: list[bytes] = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    except OSError as err:
        raise QomError(f"Unable to read {path}: Error reading file \u201c{path}\u201d: "
                       f"{os.strerror(err.errno or 0)}") from err
    finally:
        os.close(fd)


@attrs.define(eq=False, repr=False)
class SecretKeyring(SecretCommon):
    """``secret_keyring``: the payload of a key in the kernel's key retention service."""

    serial: int = 0

    def set_serial(self, value: int) -> None:
        """``serial``: any int32 but 0."""
        if value == 0:
            raise QomError("'serial' should not be equal to 0")
        self.serial = value

    def load_data(self) -> bytes:
        """QEMU's ``qcrypto_secret_keyring_load_data``: ``keyctl_read`` twice."""
        if not self.serial:
            raise QomError("'serial' parameter must be provided")
        syscall = ctypes.CDLL(None, use_errno=True).syscall
        syscall.restype = ctypes.c_long
        size = syscall(_SYS_KEYCTL, _KEYCTL_READ, ctypes.c_int32(self.serial), None,
                       ctypes.c_size_t(0))
        if size > 0:
            buffer = ctypes.create_string_buffer(size)
            got = syscall(_SYS_KEYCTL, _KEYCTL_READ, ctypes.c_int32(self.serial), buffer,
                          ctypes.c_size_t(size))
            if got >= 0:
                return buffer.raw[:min(got, size)]
        err = ctypes.get_errno()
        raise QomError(f"Unable to read serial key {self.serial & 0xFFFFFFFF:08x}: "
                       f"{os.strerror(err)}")


def lookup_secret(tree: ObjectTree, secret_id: str) -> bytes:
    """QEMU's ``qcrypto_secret_lookup``: the loaded bytes of ``/objects/<secret_id>``."""
    obj = tree.objects.child(secret_id) if secret_id else None
    if obj is None:
        raise QomError(f"No secret with id '{secret_id}'")
    if not isinstance(obj, SecretCommon):
        raise QomError(f"Object with id '{secret_id}' is not a secret")
    if obj.raw_data is None:
        raise QomError(f"Secret with id '{secret_id}' has no data")
    return obj.raw_data


def _as(obj: Object, cls: type[Any]) -> Any:
    assert isinstance(obj, cls)
    return obj


def _str_property(name: str, cls: type[Any], attr: str) -> Property:
    """A string property over ``attr``; unset (``None``) reads as ``""``."""
    return Property(name=name, type="string", kind=STR,
                    getter=lambda obj: getattr(_as(obj, cls), attr) or "",
                    setter=lambda obj, value: setattr(_as(obj, cls), attr, value))


def _secret_common_class_init(klass: ObjectClass, data: Any) -> None:
    klass.add_property(Property(name="loaded", type="bool", kind=BOOL,
                                getter=lambda obj: _as(obj, SecretCommon).raw_data is not None,
                                schema_member=True))
    klass.add_property(Property(name="format", type=SECRET_FORMAT.name, kind=SECRET_FORMAT,
                                getter=lambda obj: _as(obj, SecretCommon).format,
                                setter=lambda obj, value: setattr(obj, "format", value)))
    klass.add_property(_str_property("keyid", SecretCommon, "keyid"))
    klass.add_property(_str_property("iv", SecretCommon, "iv"))


def _secret_class_init(klass: ObjectClass, data: Any) -> None:
    klass.add_property(_str_property("data", Secret, "data"))
    klass.add_property(_str_property("file", Secret, "file"))


def _secret_keyring_class_init(klass: ObjectClass, data: Any) -> None:
    klass.add_property(Property(
        name="serial", type="int32_t", kind=INT32, mandatory=True,
        getter=lambda obj: _as(obj, SecretKeyring).serial,
        setter=lambda obj, value: _as(obj, SecretKeyring).set_serial(value)))


SECRET_TYPES: Final = (
    TypeInfo(name=TYPE_SECRET_COMMON, parent="object", impl=SecretCommon, abstract=True,
             interfaces=(TYPE_USER_CREATABLE,), class_init=_secret_common_class_init),
    TypeInfo(name=TYPE_SECRET, parent=TYPE_SECRET_COMMON, impl=Secret,
             class_init=_secret_class_init),
    TypeInfo(name=TYPE_SECRET_KEYRING, parent=TYPE_SECRET_COMMON, impl=SecretKeyring,
             class_init=_secret_keyring_class_init),
)


@hookimpl
def qom_register_types(registry: TypeRegistry) -> None:
    """Register ``secret_common``, ``secret`` and ``secret_keyring``."""
    for info in SECRET_TYPES:
        registry.register(info)
