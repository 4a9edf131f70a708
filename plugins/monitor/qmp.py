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

import collections
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

import qom
from plugins.commands import CommandNotFoundError
from plugins.monitor import qjson
from plugins.monitor.commands import QEMU_VERSION, check_capabilities, package_string
from plugins.monitor.control import VmControl
from plugins.monitor.loop import Outcome
from qom.logs import LazyLogger
from qom.qdict import qdict_order

log = LazyLogger(__name__)

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
    ordered, plain = _qdict_ordered_deep(message)
    if plain:
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


#: deeper messages go to :func:`qjson.to_json`: the C encoder recurses (an ``id``
#: may nest 1,024 levels deep, as QEMU's parser allows)
_PLAIN_DEPTH = 64


def _qdict_ordered_deep(message: Any) -> tuple[Any, bool]:
    """:func:`qom.qdict.qdict_ordered_deep` (iterative), and whether the result is
    plain: only dicts, lists, str, int, bool and None (floats, tuples and
    subclasses are for :mod:`.qjson`), nested less than ``_PLAIN_DEPTH`` deep."""
    kind = type(message)
    if kind in _PLAIN_LEAVES:
        return message, True
    plain = True
    if kind is dict or isinstance(message, Mapping):
        root: Any = {}
    elif isinstance(message, list):
        root = []
    else:
        return message, False
    todo: list[tuple[Any, Any, int]] = [(message, root, 1)]
    while todo:
        source, copy, depth = todo.pop()
        if depth >= _PLAIN_DEPTH:
            plain = False
        if isinstance(source, Mapping):
            keys = tuple(source)
            order = _key_order(keys) if len(keys) <= 64 else qdict_order(keys)
            pairs: Any = ((key, source[key]) for key in order)
        else:
            pairs = enumerate(source)
        for key, item in pairs:  # leaves inline: most values of a reply are leaves
            item_kind = type(item)
            if item_kind in _PLAIN_LEAVES:
                value = item
            elif item_kind is dict or isinstance(item, Mapping):
                value = {}
                todo.append((item, value, depth + 1))
            elif isinstance(item, list):
                value = []
                todo.append((item, value, depth + 1))
            else:
                plain = False
                value = item
            if isinstance(copy, dict):
                copy[key] = value
            else:
                copy.append(value)
    return root, plain


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
        #: the transport's "has the client hung up already?" (sockets set it)
        self.peer_gone: Callable[[], bool] = lambda: False
        self._pending: collections.deque[qjson.Parsed] = collections.deque()
        self._busy = False   # a request of this session is on the command thread
        control.add_listener(self._on_event)

    # -- the transport's side ----------------------------------------------

    def start(self) -> None:
        """Send the greeting."""
        self._send(greeting())

    def feed(self, data: bytes) -> None:
        """Handle every complete JSON value in ``data`` (the rest waits for more)."""
        try:
            values = self._stream.feed(data)
        except Exception as err:  # a bug must not wedge the stream: start afresh
            log.exception("QMP input failed")
            self._stream = qjson.JsonStream()
            values = [qjson.Parsed(error=str(err) or type(err).__name__)]
        if self.control.command_thread is not None:
            self._pending.extend(values)
            if not self._busy:
                self._answer_next()
            return
        for parsed in values:
            if not self._may_answer():
                return
            self._send(self.handle(parsed.value) if parsed.error is None
                       else error_response("GenericError", parsed.error))
            if self.control.quit_requested:
                self.control.finish_quit()
                return

    def _may_answer(self) -> bool:
        """Whether the next request still gets an answer: not after quit's reply (as
        in QEMU), not once the client has hung up (QEMU drops what was queued)."""
        return not (self.closed or self.control.quit_requested or self.peer_gone())

    def _answer_next(self) -> None:
        """Answer queued requests in order, each command on the command thread
        (the next one once the reply of the one before is out)."""
        thread = self.control.command_thread
        assert thread is not None
        while self._pending:
            parsed = self._pending.popleft()
            if not self._may_answer():
                self._pending.clear()
                return
            if parsed.error is not None:
                self._send(error_response("GenericError", parsed.error))
                if self._quit_answered():
                    return
                continue
            self._busy = True
            thread.run(functools.partial(self.handle, parsed.value)).add_done_callback(
                self._answered)
            return

    def _answered(self, done: Outcome[dict[str, Any]]) -> None:
        self._busy = False
        self._send(done.result())
        if not self._quit_answered():
            self._answer_next()

    def _quit_answered(self) -> bool:
        """After a reply: if the VM quit, nothing more is answered (True)."""
        if not self.control.quit_requested:
            return False
        self._pending.clear()
        self.control.finish_quit()
        return True

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
