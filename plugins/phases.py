"""The plug and unplug phases, and calling every implementation of a hook.

The order of the phases is part of the contract (see :mod:`plugins.hookspecs`);
a hotplug handler runs them with :func:`run_plug_phases` and
:func:`run_unplug_phases`, so no handler can get the order wrong.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import pluggy

    from qom import Device, Object, UndoStack

#: Plug phases, in the order they run: ``qom_device_plug_<phase>``.
PLUG_PHASES: Final = ("claim", "map", "describe", "announce")
#: Unplug phases, in the order they run (the plug's, reversed; a removal is
#: announced by the unplug request): ``qom_device_unplug_<phase>``.
UNPLUG_PHASES: Final = ("describe", "map", "claim")


def run_plug_phases(hook: pluggy.HookRelay, machine: Object, device: Device,
                    undo: UndoStack) -> None:
    """Call ``qom_device_plug_<phase>`` for each of :data:`PLUG_PHASES`, in order.

    :param hook: the plugin manager's hook relay (``pm.hook``).
    """
    for phase in PLUG_PHASES:
        getattr(hook, f"qom_device_plug_{phase}")(machine=machine, device=device, undo=undo)


def run_unplug_phases(hook: pluggy.HookRelay, machine: Object, device: Device) -> None:
    """Call ``qom_device_unplug_<phase>`` for each of :data:`UNPLUG_PHASES`, in order.

    The guest has let the device go by then, so an unplug is never left half
    done: every implementation of every phase runs (:func:`call_each`), and one
    that raises is reported as a :class:`HookFailureWarning`.
    """
    for phase in UNPLUG_PHASES:
        call_each(getattr(hook, f"qom_device_unplug_{phase}"), machine=machine, device=device)


class HookFailureWarning(RuntimeWarning):
    """A hook implementation raised where every implementation must run
    (``qom_machine_shutdown``); the others ran anyway."""


def call_each(caller: pluggy.HookCaller, **kwargs: Any) -> list[tuple[str, BaseException]]:
    """Call every implementation of a hook, in pluggy's order, even when one raises.

    Each failure is reported as a :class:`HookFailureWarning` naming the plugin,
    and returned.  The call goes through pluggy as one hook call, so hook-call
    monitoring (``pyqom.testing``'s ``hook_recorder``, pluggy's tracing) sees it
    as it sees any other; ``KeyboardInterrupt`` and ``SystemExit`` still stop it.

    :returns: ``(plugin name, exception)`` of each implementation that raised.
    """
    import functools

    import pluggy

    failures: list[tuple[str, BaseException]] = []

    def guarded(impl: pluggy.HookImpl) -> pluggy.HookImpl:
        @functools.wraps(impl.function)
        def call(*args: Any, **kw: Any) -> object:
            try:
                return impl.function(*args, **kw)
            except Exception as err:
                failures.append((impl.plugin_name, err))
                warnings.warn(f"plugin '{impl.plugin_name}': {caller.name} failed: "
                              f"{type(err).__name__}: {err}", HookFailureWarning, stacklevel=2)
                return None

        return pluggy.HookImpl(impl.plugin, impl.plugin_name, call, impl.opts)

    # HookCaller's executor runs a list of implementations as one monitored call.
    caller._hookexec(caller.name, [guarded(impl) for impl in caller.get_hookimpls()],
                     kwargs, False)
    return failures
