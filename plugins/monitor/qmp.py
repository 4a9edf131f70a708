"""QMP, the protocol: one :class:`QmpSession` per client connection, as QEMU 7.2 speaks it.

* The greeting, then capability negotiation: before ``qmp_capabilities``
  every command is "not found" with the message ``Expecting capabilities
  negotiation with 'qmp_capabilities'``; afterwards ``qmp_capabilities``
  itself is refused (``Capabilities negotiation is already complete,
  command ignored``).  Events reach only negotiated sessions.
* Input is QEMU's JSON stream (:class:`plugins.monitor.qjson.JsonStream`):
  values may span lines or share one; syntax errors are answered with
  QEMU's ``JSON parse error, ...`` messages and the stream resynchronises
  as QEMU's does.
* Each request is checked as ``qmp_dispatch_check_obj`` checks it (in QDict
  key order): a JSON object, ``execute`` a string, ``arguments`` an object,
  no other member but ``id``; then the command is looked up and run.
* Output: one compact JSON line per message, keys in QDict order, ``id``
  echoed (also on errors), events written as they happen, so before the
  reply of the command that caused them; ``quit`` answers after SHUTDOWN.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import qom
from plugins.monitor import qjson
from plugins.monitor.commands import (
    QEMU_VERSION,
    CommandNotFoundError,
    VmControl,
    check_capabilities,
    package_string,
)
from qom.qdict import qdict_order

log = logging.getLogger(__name__)

NEGOTIATION_MESSAGE = "Expecting capabilities negotiation with 'qmp_capabilities'"

#: Commands QEMU 7.2 allows with ``exec-oob`` (none of pyqom's).
OOB_COMMANDS: frozenset[str] = frozenset({"migrate-recover", "migrate-pause", "x-oob-test"})


def encode(message: Any) -> bytes:
    """One QMP output line: QDict key order, QEMU's compact JSON, ``\\r\\n``.

    QEMU ends the JSON text with ``\\n`` and its ``monitor_puts`` turns every
    ``\\n`` of monitor output into ``\\r\\n``, on every transport (libvirt's
    parser waits for the ``\\r\\n``).

    Same bytes as ``qjson.to_json(qdict_ordered_deep(message))``, faster: key
    orders are cached per key tuple, and a message of dicts, lists, strings,
    ints, booleans and nulls is written by the C encoder of :mod:`json`, whose
    compact form is QEMU's as long as no string needs escaping (its output,
    ASCII-only, has no backslash); anything else goes through :func:`qjson.to_json`.
    """
    plain = [True]
    ordered = _qdict_ordered_deep(message, plain)
    if plain[0]:
        text = json.dumps(ordered, check_circular=False)
        if "\\" not in text:
            return (text + "\r\n").encode("ascii")
    return (qjson.to_json(ordered) + "\r\n").encode("ascii")


#: Leaves the C JSON encoder writes exactly as QEMU does (strings: unless escaped).
_PLAIN_LEAVES: frozenset[type] = frozenset({str, int, bool, type(None)})


@functools.lru_cache(maxsize=1024)
def _key_order(keys: tuple[str, ...]) -> tuple[str, ...]:
    """:func:`qom.qdict.qdict_order`, cached: replies repeat the same few key sets."""
    return tuple(qdict_order(keys))


def _qdict_ordered_deep(value: Any, plain: list[bool]) -> Any:
    """:func:`qom.qdict.qdict_ordered_deep`; clears ``plain[0]`` on a leaf that is not a
    str, int, bool or None (floats, tuples, subclasses: :mod:`.qjson` writes those)."""
    kind = type(value)
    if kind in _PLAIN_LEAVES:
        return value
    if kind is dict or isinstance(value, Mapping):
        keys = tuple(value)
        order = _key_order(keys) if len(keys) <= 64 else qdict_order(keys)
        ordered: dict[str, Any] = {}
        for key in order:  # leaves inline: most values of a reply are leaves
            item = value[key]
            ordered[key] = (item if type(item) in _PLAIN_LEAVES
                            else _qdict_ordered_deep(item, plain))
        return ordered
    if isinstance(value, list):
        return [item if type(item) in _PLAIN_LEAVES else _qdict_ordered_deep(item, plain)
                for item in value]
    plain[0] = False
    return value


def greeting() -> dict[str, Any]:
    """The QMP greeting, built in QEMU's insertion order."""
    return {"QMP": {"version": {"qemu": dict(QEMU_VERSION), "package": package_string()},
                    "capabilities": ["oob"]}}


def error_response(error_class: str, desc: str) -> dict[str, Any]:
    return {"error": {"class": error_class, "desc": desc}}


class _RequestError(Exception):
    """A request refused before its command ran."""

    def __init__(self, desc: str, error_class: str = "GenericError") -> None:
        super().__init__(desc)
        self.error_class = error_class


class QmpSession:
    """The QMP side of one connection; the transport gives it bytes and a writer.

    :param control: the VM's shared monitor state.
    :param write: sends bytes to this client.
    """

    def __init__(self, control: VmControl, write: Callable[[bytes], None]) -> None:
        self.control = control
        self._write = write
        self.negotiated = False
        self.oob = False
        self.closed = False
        self._stream = qjson.JsonStream()
        control.add_listener(self._on_event)

    # -- the transport's side ----------------------------------------------

    def start(self) -> None:
        """Send the greeting."""
        self._send(greeting())

    def feed(self, data: bytes) -> None:
        """Handle every complete JSON value in ``data`` (the rest waits for more)."""
        for parsed in self._stream.feed(data):
            if self.closed or self.control.quit_requested:
                return  # QEMU answers nothing after quit's reply
            if parsed.error is not None:
                self._send(error_response("GenericError", parsed.error))
            else:
                self._send(self.handle(parsed.value))
            if self.control.quit_requested:
                self.control.finish_quit()
                return

    def close(self) -> None:
        """The client went away: stop sending it events."""
        self.closed = True
        self.control.remove_listener(self._on_event)

    @property
    def finished(self) -> bool:
        """True once the VM quit: the transport closes the connection."""
        return self.control.quit_requested

    # -- requests ------------------------------------------------------------

    def handle(self, request: Any) -> dict[str, Any]:
        """The response to one parsed request (``id`` echoed when there is one)."""
        has_id = isinstance(request, dict) and "id" in request
        try:
            response: dict[str, Any] = {"return": self._dispatch(request)}
        except _RequestError as err:
            response = error_response(err.error_class, str(err))
        except qom.QomError as err:
            response = error_response(err.error_class, str(err))
        except Exception as err:  # a bug must not take the monitor down
            log.exception("QMP command failed")
            response = error_response("GenericError", str(err) or type(err).__name__)
        if has_id:
            response["id"] = request["id"]
        return response

    def _dispatch(self, request: Any) -> Any:
        if not isinstance(request, dict):
            raise _RequestError("QMP input must be a JSON object")
        self._check_members(request)
        oob = "execute" not in request
        name = request["execute"] if not oob else request["exec-oob"]
        arguments = request.get("arguments", {})
        if not self.negotiated:
            if name != "qmp_capabilities":
                raise _RequestError(NEGOTIATION_MESSAGE, "CommandNotFound")
            return self._negotiate(arguments)
        command = self.control.commands.get(name)
        if command is None:
            raise CommandNotFoundError(f"The command {name} has not been found")
        if oob and name not in OOB_COMMANDS:
            raise _RequestError(f"The command {name} does not support OOB")
        result = self.control.execute(name, arguments)
        return {} if result is None else result

    def _check_members(self, request: dict[str, Any]) -> None:
        """QEMU's ``qmp_dispatch_check_obj``: the first problem in QDict key order."""
        has_exec = False
        for key in qdict_order(request):
            value = request[key]
            if key == "execute" or (key == "exec-oob" and self.oob):
                if not isinstance(value, str):
                    raise _RequestError(f"QMP input member '{key}' must be a string")
                if has_exec:
                    raise _RequestError(f"QMP input member '{key}' is unexpected")
                has_exec = True
            elif key == "arguments":
                if not isinstance(value, dict):
                    raise _RequestError("QMP input member 'arguments' must be an object")
            elif key != "id":
                raise _RequestError(f"QMP input member '{key}' is unexpected")
        if not has_exec:
            raise _RequestError("QMP input lacks member 'execute'")

    def _negotiate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        command = self.control.commands.get("qmp_capabilities")
        assert command is not None
        kwargs = self.control.commands.check_arguments(command, arguments)
        enabled = check_capabilities(kwargs.get("enable", []))
        self.oob = "oob" in enabled
        self.negotiated = True
        return {}

    # -- output ----------------------------------------------------------------

    def _on_event(self, event: dict[str, Any]) -> None:
        if self.negotiated and not self.closed:
            self._send(event)

    def _send(self, message: Any) -> None:
        if not self.closed:
            self._write(encode(message))
