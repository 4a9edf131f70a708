"""The example plugin's monitor command, over QMP and HMP."""

from pyqom_example_plugin import plugin

from plugins.monitor import HmpSession, QmpSession, VmControl
from pyqom import VM


def _control() -> VmControl:
    vm = VM("1G", slots=1, maxmem="2G", plugins=[plugin], autoload=False)
    return VmControl(vm)


def test_qmp_and_hmp() -> None:
    control = _control()
    try:
        out: list[bytes] = []
        session = QmpSession(control, out.append)
        session.feed(b'{"execute":"qmp_capabilities"}'
                     b'{"execute":"x-example-greet","arguments":{"name":"QEMU"},"id":1}'
                     b'{"execute":"x-example-greet","arguments":{"name":1}}')
        assert out[1] == b'{"return": {"greeting": "Hello, QEMU!"}, "id": 1}\r\n'
        assert b"Invalid parameter type for 'name', expected: string" in out[2]
        hmp = HmpSession(control)
        hmp.run_line("example_greet")
        assert hmp.take_output() == "Hello, world!\r\n"
    finally:
        control.vm.close()
