"""secret and secret_keyring: data and files really read, base64 decoded as GLib
decodes it (checked against the host's GLib), AES-256-CBC through libcrypto,
keys from the kernel's key retention service."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import pytest
from backend_helpers import error_of

from backends.secret import (
    Secret,
    aes_256_cbc_decrypt,
    glib_base64_decode,
    lookup_secret,
    qbase64_decode,
)
from qom import object_add, qom_get

#: test vectors made with ``openssl enc -aes-256-cbc -K <KEY hex> -iv <IV hex>``
KEY = b"0123456789abcdef0123456789abcdef"
IV_TEXT = b"0123456789abcdef"
IV = "MDEyMzQ1Njc4OWFiY2RlZg=="
HELLO = "4BKQy3VhJwMcPySKRiqw9g=="                    # "hello secret"
SECOND_KEY = "734H5rOppjjhWnfkswouTJEnsIqf598JXNQWRT1qkAQRUem6Sh/Pr+gVkXMIXeNS"
SECOND_KEY_PLAIN = b"abcdefghijklmnopqrstuvwxyz012345"
CHAINED = "JwyFKVHXjMXLOvVFbnzMsw=="                  # "chained", with the second key


def secret(tree, object_id="s1", **props) -> Secret:
    obj = object_add(tree, {"qom-type": "secret", "id": object_id, **props})
    assert isinstance(obj, Secret)
    return obj


def test_data_and_files_are_the_secret(tree, tmp_path):
    assert secret(tree, data="abc").raw_data == b"abc"
    path = tmp_path / "s.bin"
    path.write_bytes(b"a\0b\n")
    assert secret(tree, "s2", file=str(path)).raw_data == b"a\0b\n"
    path.write_bytes(b"YWJj\n")
    assert secret(tree, "s3", file=str(path), format="base64").raw_data == b"abc"
    assert qom_get(tree, "/objects/s3", "loaded") is True
    assert qom_get(tree, "/objects/s3", "file") == str(path)
    assert qom_get(tree, "/objects/s3", "data") == ""
    assert lookup_secret(tree, "s3") == b"abc"


@pytest.mark.parametrize(("props", "message"), [
    ({}, "Either 'file' or 'data' must be provided"),
    ({"data": "x", "file": "/etc/hostname"}, "'file' and 'data' are mutually exclusive"),
    ({"file": "/nonexistent"},
     "Unable to read /nonexistent: Failed to open file \u201c/nonexistent\u201d:"
     " No such file or directory"),
    ({"file": "/"}, "Unable to read /: Error reading file \u201c/\u201d: Is a directory"),
    ({"data": "a!", "format": "base64"}, "Base64 data contains invalid characters"),
    ({"data": "abc", "loaded": True}, "Property 'secret.loaded' is not writable"),
    ({"data": "abc", "format": "hex"}, "Parameter 'format' does not accept value 'hex'"),
    ({"data": "abc", "keyid": "nosuch"}, "No secret with id 'nosuch'"),
    ({"data": "abc", "keyid": ""}, "No secret with id ''"),
])
def test_errors_are_qemus(tree, props, message):
    assert error_of(secret, tree, **props) == message
    assert tree.objects.child("s1") is None


def test_embedded_nul_in_base64_file(tree, tmp_path):
    path = tmp_path / "nul"
    path.write_bytes(b"YW\0Jj")
    assert error_of(secret, tree, file=str(path), format="base64") \
        == "Base64 data contains embedded NUL characters"


def test_decrypt_with_a_key_secret(tree, tmp_path):
    secret(tree, "key", data=KEY.decode())
    assert secret(tree, "hello", data=HELLO, keyid="key", iv=IV,
                  format="base64").raw_data == b"hello secret"
    raw = tmp_path / "hello.bin"
    raw.write_bytes(qbase64_decode(HELLO.encode(), nul_terminated=False))
    assert secret(tree, "hello2", file=str(raw), keyid="key", iv=IV).raw_data \
        == b"hello secret"
    assert secret(tree, "key2", data=SECOND_KEY, keyid="key", iv=IV,
                  format="base64").raw_data == SECOND_KEY_PLAIN
    assert secret(tree, "chained", data=CHAINED, keyid="key2", iv=IV,
                  format="base64").raw_data == b"chained"


@pytest.mark.parametrize(("props", "message"), [
    ({"keyid": "short"}, "Key should be 32 bytes in length"),
    ({"keyid": "rng"}, "Object with id 'rng' is not a secret"),
    ({"keyid": "key"}, "IV is required to decrypt secret"),
    ({"keyid": "key", "iv": "a!"}, "Base64 data contains invalid characters"),
    ({"keyid": "key", "iv": "YWJj"}, "IV should be 16 bytes in length not 3"),
    ({"keyid": "key", "iv": IV}, "Length 3 must be a multiple of block size 16"),
    ({"keyid": "key", "iv": IV, "data": "0123456789abcdef"},
     "Incorrect number of padding bytes (122) found on decrypted data"),
    ({"keyid": "key", "iv": IV, "data": CHAINED, "format": "base64"},
     "Incorrect number of padding bytes (45) found on decrypted data"),
])
def test_decrypt_errors_are_qemus(tree, props, message):
    secret(tree, "key", data=KEY.decode())
    secret(tree, "short", data="abc")
    object_add(tree, {"qom-type": "rng-builtin", "id": "rng"})
    assert error_of(secret, tree, **{"data": "abc", **props}) == message


def test_aes_matches_openssl_vectors():
    ciphertext = qbase64_decode(HELLO.encode(), nul_terminated=False)
    plain = aes_256_cbc_decrypt(KEY, IV_TEXT, ciphertext)
    assert plain == b"hello secret" + bytes([4]) * 4     # the padding is left in place


def _host_glib_decode():
    name = ctypes.util.find_library("glib-2.0")
    if name is None:
        pytest.skip("GLib is not installed (QEMU's dependency; Debian: libglib2.0-0)")
    glib = ctypes.CDLL(name)
    glib.g_base64_decode.restype = ctypes.POINTER(ctypes.c_ubyte)
    glib.g_base64_decode.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t)]
    glib.g_free.argtypes = [ctypes.c_void_p]

    def decode(text: bytes) -> bytes:
        length = ctypes.c_size_t(0)
        pointer = glib.g_base64_decode(text, ctypes.byref(length))
        try:
            return bytes(pointer[:length.value])
        finally:
            glib.g_free(pointer)

    return decode


@pytest.mark.parametrize("text", [
    b"", b"YW", b"YWJj", b"YWJjZA", b"YWJjZA==", b"YWJjZA=", b"YW=Jj==YWJj", b"====",
    b"YWJj\nZGVm\n", b"=YWJj", b"Y=Jj", b"YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=\n",
    b"YW=Jj==YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=\n", b"A", b"AB==CD==",
    b"+/+/", b"////\n////",
])
def test_base64_is_decoded_as_the_hosts_glib_does(text):
    assert glib_base64_decode(text) == _host_glib_decode()(text)


# ---------------------------------------------------------------------------
# secret_keyring
# ---------------------------------------------------------------------------

_SYS_ADD_KEY = 248
_KEY_SPEC_PROCESS_KEYRING = -2


def _add_user_key(payload: bytes) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    serial = libc.syscall(_SYS_ADD_KEY, b"user", b"pyqom-test", payload,
                          ctypes.c_size_t(len(payload)), ctypes.c_int(_KEY_SPEC_PROCESS_KEYRING))
    if serial < 0:
        pytest.skip(f"add_key: {os.strerror(ctypes.get_errno())}")
    return int(serial)


def test_keyring_secret_reads_the_kernels_key(tree):
    serial = _add_user_key(b"from the kernel")
    obj = object_add(tree, {"qom-type": "secret_keyring", "id": "k1", "serial": serial})
    assert lookup_secret(tree, "k1") == b"from the kernel"
    assert qom_get(tree, "/objects/k1", "serial") == serial
    assert obj.get_json("loaded") is True


def test_keyring_errors_are_qemus(tree):
    def keyring(**props):
        return object_add(tree, {"qom-type": "secret_keyring", "id": "k1", **props})

    assert error_of(keyring) == "Parameter 'serial' is missing"
    assert error_of(keyring, serial=0) == "'serial' should not be equal to 0"
    assert error_of(keyring, serial=123) \
        == "Unable to read serial key 0000007b: Required key not available"
    assert error_of(keyring, serial=1 << 32) == "Parameter 'serial' expects int32_t"
