"""The monitors' event loop (plugins.monitor.loop) and the socket connections it drives."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plugins.monitor import EventLoop, VmControl, serve_qmp
from plugins.monitor.loop import Outcome


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    running = EventLoop()
    yield running
    running.close()


def test_soon_callbacks_run_in_order_and_later_ones_on_the_next_pass(loop: EventLoop) -> None:
    seen: list[str] = []

    def first() -> None:
        seen.append("first")
        loop.call_soon(seen.append, "queued by first")

    loop.call_soon(first)
    loop.call_soon(seen.append, "second")
    loop.run_until(lambda: len(seen) >= 2)
    assert seen == ["first", "second"]   # the one queued by first waits for the next pass
    loop.run_until(lambda: len(seen) == 3)
    assert seen[2] == "queued by first"


def test_threadsafe_calls_wake_a_blocked_loop_in_the_order_they_were_made(
        loop: EventLoop) -> None:
    seen: list[int] = []

    def producer() -> None:
        time.sleep(0.05)       # the loop is blocked in select by then
        for number in range(100):
            loop.call_soon_threadsafe(seen.append, number)

    thread = threading.Thread(target=producer)
    started = time.monotonic()
    thread.start()
    assert loop.run_until(lambda: len(seen) == 100, timeout=5)
    thread.join()
    assert seen == list(range(100))
    assert time.monotonic() - started < 2


def test_timers_fire_in_time_order_and_cancelled_ones_never(loop: EventLoop) -> None:
    seen: list[str] = []
    loop.call_later(0.03, seen.append, "late")
    dropped = loop.call_later(0.01, seen.append, "cancelled")
    loop.call_later(0.0, seen.append, "now")
    loop.call_later(0.02, seen.append, "middle")
    dropped.cancel()
    loop.run_until(lambda: len(seen) == 3, timeout=5)
    assert seen == ["now", "middle", "late"]


def test_run_until_gives_up_after_its_timeout(loop: EventLoop) -> None:
    started = time.monotonic()
    assert loop.run_until(lambda: False, timeout=0.05) is False
    assert 0.04 < time.monotonic() - started < 1


def test_stop_from_another_thread_ends_run_forever(loop: EventLoop) -> None:
    threading.Timer(0.05, loop.stop).start()
    started = time.monotonic()
    loop.run_forever()
    assert time.monotonic() - started < 2


def test_readers_and_writers_follow_their_descriptors(loop: EventLoop) -> None:
    read_end, write_end = os.pipe()
    try:
        got: list[bytes] = []
        loop.add_reader(read_end, lambda: got.append(os.read(read_end, 100)))
        wrote: list[bool] = []

        def writable() -> None:
            os.write(write_end, b"ping")
            wrote.append(True)
            loop.remove_writer(write_end)

        loop.add_writer(write_end, writable)
        loop.run_until(lambda: got == [b"ping"], timeout=5)
        assert wrote == [True]
        loop.remove_reader(read_end)
        os.write(write_end, b"unread")
        loop.run_until(lambda: False, timeout=0.05)
        assert got == [b"ping"]      # no reader any more
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_failing_callback_is_reported_and_the_loop_goes_on(
        loop: EventLoop, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[str] = []

    def broken() -> None:
        raise ValueError("boom")

    loop.call_soon(broken)
    loop.call_soon(seen.append, "after")
    loop.run_until(lambda: bool(seen), timeout=5)
    assert seen == ["after"]
    err = capsys.readouterr().err
    assert "internal error in event loop callback" in err
    assert "ValueError: boom" in err


def test_a_closed_loop_refuses_threadsafe_calls() -> None:
    closed = EventLoop()
    closed.close()
    with pytest.raises(RuntimeError, match="closed"):
        closed.call_soon_threadsafe(print)
    closed.stop()    # harmless
    closed.close()   # twice is fine


def test_outcome_runs_callbacks_once_settled() -> None:
    outcome: Outcome[int] = Outcome()
    seen: list[int] = []
    outcome.add_done_callback(lambda done: seen.append(done.result()))
    with pytest.raises(RuntimeError, match="not settled"):
        outcome.result()
    outcome.set_result(7)
    outcome.add_done_callback(lambda done: seen.append(done.result() + 1))  # at once
    assert seen == [7, 8]
    with pytest.raises(RuntimeError, match="settled already"):
        outcome.set_result(9)
    failed: Outcome[int] = Outcome()
    failed.set_exception(KeyError("k"))
    with pytest.raises(KeyError):
        failed.result()


def _serve_in_thread(loop: EventLoop) -> threading.Thread:
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    return thread


def test_a_client_that_reads_late_gets_every_reply_in_order(
        control: VmControl, loop: EventLoop, tmp_path: Path) -> None:
    """Replies the socket does not take at once are kept and sent as it drains."""
    path = str(tmp_path / "qmp.sock")
    server = serve_qmp(control, loop, f"unix:{path},server=on,wait=off")
    thread = _serve_in_thread(loop)
    count = 3000   # megabytes of replies: far more than a socket buffer holds
    try:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(path)
        client.sendall(b'{"execute":"qmp_capabilities"}'
                       + b''.join(b'{"execute":"qom-list-types","id":%d}' % n
                                  for n in range(count)))
        time.sleep(0.3)   # the server is blocked on a full socket by now
        data = b""
        client.settimeout(10)
        while data.count(b"\r\n") < count + 2:
            chunk = client.recv(1 << 20)
            assert chunk, "the server hung up"
            data += chunk
        lines = data.split(b"\r\n")
        assert json.loads(lines[1]) == {"return": {}}
        assert [json.loads(line)["id"] for line in lines[2:count + 2]] == list(range(count))
        client.close()
    finally:
        loop.stop()
        thread.join(10)
        server.close()


def test_closing_the_server_sends_what_was_still_kept(
        control: VmControl, loop: EventLoop, tmp_path: Path) -> None:
    path = str(tmp_path / "qmp.sock")
    server = serve_qmp(control, loop, f"unix:{path},server=on,wait=off")
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    client.sendall(b'{"execute":"qmp_capabilities"}'
                   + b'{"execute":"qom-list-types"}' * 500)
    loop.run_until(lambda: False, timeout=0.5)     # served, the rest kept
    (connection,) = server.connections
    assert connection._out, "the socket took everything: the test proves nothing"
    received = bytearray()
    reader = threading.Thread(target=lambda: _read_all(client, received))
    reader.start()
    server.close()
    reader.join(10)
    assert received.count(b"\r\n") == 502           # greeting, negotiation, 500 replies
    assert not os.path.exists(path)


def _read_all(sock: socket.socket, into: bytearray) -> None:
    sock.settimeout(10)
    while chunk := sock.recv(1 << 20):
        into += chunk
