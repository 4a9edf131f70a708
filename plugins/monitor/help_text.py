"""The help texts QEMU 7.2 prints, for what pyqom has: ``-h``, ``-machine help``,
``-cpu help``, ``-object help``, ``-device help`` and the ``<type>,help`` forms
(the last two also for HMP's ``object_add`` and ``device_add``).

Layouts and wording are QEMU 7.2's; the entries are pyqom's own types, options
and properties, read from the registry, so a plugin's types appear too.
"""

from __future__ import annotations

import qom
from devices.machine import MACHINE_ALIASES, MACHINE_DESCRIPTION
from plugins.monitor import qjson
from plugins.monitor.commands import QEMU_VERSION, pyqom_version
from qom.device import SLOT_BUS, SLOT_CATEGORY, SLOT_DESC, SLOT_USER_CREATABLE

#: ``-cpu help`` lines (QEMU's ``x86 %-20s %s``) of the models pyqom accepts
CPU_MODELS = (("qemu64", "(alias configured by machine type)"),
              ("max", "Enables all features supported by the accelerator in the current host"))


def version_text(prog: str) -> str:
    """``-version``: QEMU's two lines, pyqom's name and version where QEMU's package is."""
    version = "{major}.{minor}.{micro}".format(**QEMU_VERSION)
    return (f"QEMU emulator version {version} ({prog} {pyqom_version()})\n"
            "Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n")


def usage_text(prog: str) -> str:
    """``-h``: QEMU 7.2's help, with the options pyqom takes, in QEMU's words and
    sections (the lines about what pyqom does not take are left out: pyqom's only
    accelerator is tcg); pyqom's own additions come last."""
    return version_text(prog) + f"""usage: {prog} [options]

Standard options:
-h or -help     display this help and exit
-version        display version information and exit
-machine [type=]name[,prop[=value][,...]]
                selects emulated machine ('-machine help' for list)
-cpu cpu        select CPU ('-cpu help' for list)
-accel [accel=]accelerator[,prop[=value][,...]]
-global driver.property=value
-global driver=driver,property=property,value=value
                set a global default for a driver property
-m [size=]megs[,slots=n,maxmem=size]
                configure guest RAM
                size: initial amount of guest memory
                slots: number of hotplug slots (default: none)
                maxmem: maximum amount of guest memory (default: none)
NOTE: Some architectures might enforce a specific granularity
-device driver[,prop[=value][,...]]
                add device (based on driver)
                prop=value,... sets driver properties
                use '-device help' to print all possible drivers
                use '-device driver,help' to print all possible properties
-name string1[,process=string2][,debug-threads=on|off]
                set the name of the guest

Display options:
-display none
                select display backend type

i386 target only:
-no-acpi        disable ACPI

Debug/Expert options:
-monitor dev    redirect the monitor to char device 'dev'
-qmp dev        like -monitor but opens in 'control' mode
-S              freeze CPU at startup (use 'c' to start execution)
-nodefaults     don't create default devices

Generic object creation:
-object TYPENAME[,PROP1=VALUE1,...]
                create a new object of type TYPENAME setting properties
                in the order they are specified.  Note that the 'id'
                property must be set.  These objects are placed in the
                '/objects' path.

{prog} additions:
-dump-acpi DIR  write the ACPI tables of the ready machine to DIR/SIG.dat
-x-prealloc-progress
                say on stderr how far each preallocation of 1 GiB or more has come
-x-check-config say whether -m, -machine and -cpu would boot (exit 0) or not
                (exit 1, with the reason and the largest maxmem that boots),
                without creating the machine
"""


def machine_list_text() -> str:
    """``-machine help``: QEMU's ``%-20s %s`` lines, each alias right before its
    machine, versions newest first."""
    lines = ["Supported machines are:"]
    versions = sorted((name for name, type_name in MACHINE_ALIASES.items()
                       if type_name == f"{name}-machine"), reverse=True)
    for name in versions:
        for alias, type_name in MACHINE_ALIASES.items():
            if type_name == f"{name}-machine" and alias != name:
                lines.append(f"{alias:<20} {MACHINE_DESCRIPTION} (alias of {name})")
        default = " (default)" if MACHINE_ALIASES["pc"] == f"{name}-machine" else ""
        lines.append(f"{name:<20} {MACHINE_DESCRIPTION}{default}")
    return "\n".join(lines) + "\n"


#: the ``-machine`` properties pyqom's pc machines take, as ``-machine pc,help`` describes them
MACHINE_OPTIONS = (("acpi", "OnOffAuto", "Enable ACPI"),
                   ("max-ram-below-4g", "size",
                    "Maximum ram below the 4G boundary (32bit boundary)"))


def machine_help_text(type_name: str) -> str:
    """``-machine NAME,help``: QEMU's property lines for what pyqom's ``-machine`` takes."""
    lines = sorted(_object_property_line(name, kind, description, qom.NO_DEFAULT)
                   for name, kind, description in MACHINE_OPTIONS)
    return f"{type_name} options:\n" + "".join(line + "\n" for line in lines)


def cpu_list_text() -> str:
    """``-cpu help``: the models pyqom accepts, in QEMU's layout."""
    return "Available CPUs:\n" + "".join(f"x86 {name:<20}  {desc}\n" for name, desc in CPU_MODELS)


def _object_property_line(name: str, type_name: str, description: str | None,
                          default: object) -> str:
    """One line of QEMU's ``type_print_class_properties``."""
    line = f"  {name}=<{type_name}>"
    if description or default is not qom.NO_DEFAULT:
        line = f"{line:<24} - "
    if description:
        line += description
    if default is not qom.NO_DEFAULT:
        line += f" (default: {qjson.to_json(default)})"
    return line


def object_list_text(registry: qom.TypeRegistry) -> str:
    """``-object help``: the user-creatable types, in byte order."""
    names = sorted(klass.name for klass in registry.list_classes(qom.TYPE_USER_CREATABLE)
                   if klass.name != qom.TYPE_USER_CREATABLE)
    return "List of user creatable objects:\n" + "".join(f"  {name}\n" for name in names)


def object_help_text(registry: qom.TypeRegistry, type_name: str) -> str | None:
    """``-object <type>,help``: its settable properties; ``None`` if no such type."""
    klass = registry.find_class(type_name)
    if klass is None:
        return None
    lines = sorted(_object_property_line(prop.name, prop.type, prop.description, prop.default)
                   for prop in klass.iter_properties() if prop.setter is not None)
    if not lines:
        return f"There are no options for {type_name}.\n"
    return f"{type_name} options:\n" + "".join(line + "\n" for line in lines)


#: QEMU's ``DeviceCategory`` headings, in the order ``-device help`` prints them
DEVICE_CATEGORIES = ("Controller/Bridge/Hub", "USB", "Storage", "Network", "Input",
                     "Display", "Sound", "Misc", "CPU", "Watchdog", "Uncategorized")


def device_list_text(registry: qom.TypeRegistry) -> str:
    """``-device help``: QEMU's categories in QEMU's order, a blank line between
    them, names sorted without regard to case; each line ``name "N"``, then
    ``, bus B`` and ``, desc "D"`` where the type has them."""
    classes = sorted((klass for klass in registry.list_classes(qom.TYPE_DEVICE)
                      if klass.slots.get(SLOT_USER_CREATABLE)),
                     key=lambda klass: klass.name.lower())
    blocks = []
    for category in DEVICE_CATEGORIES:
        members = [klass for klass in classes
                   if klass.slots.get(SLOT_CATEGORY, "Uncategorized") == category]
        if not members:
            continue
        lines = [f"{category} devices:"]
        for klass in members:
            line = f'name "{klass.name}"'
            bus = klass.slots.get(SLOT_BUS)
            if bus:
                line += f", bus {bus.split('.')[0].upper()}"
            description = klass.slots.get(SLOT_DESC)
            if description:
                line += f', desc "{description}"'
            lines.append(line)
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def device_help_text(tree: qom.ObjectTree, driver: str) -> str:
    """``-device <driver>,help``: its properties (``device-list-properties``).

    :raises qom.QomError: QEMU's message for a driver that is not a device.
    """
    lines = [f"{driver} options:"]
    for prop in sorted(qom.device_list_properties(tree, driver), key=lambda p: p["name"]):
        line = f"  {prop['name']}=<{prop['type']}>"
        # QEMU: "%-24s - %s" with the description, then " (default: V)".
        description = prop.get("description", "")
        default = ""
        if "default-value" in prop:
            default = f" (default: {qjson.to_json(prop['default-value'])})"
        if description or default:
            line = f"{line:<24} - {description}{default}"
        lines.append(line)
    return "\n".join(lines) + "\n"
