# -*- test-case-name: tests.test_packages -*-
"""
Event packages (RFC 6665 section 5.4): the registry the notifier and the
PUBLISH handler look packages up in, and their discovery as Twisted plugins.

Every package, built-in or third-party, is found the same way: an object
providing both L{twisted.plugin.IPlugin} and
L{sipevents.interfaces.IEventPackage} at module level in a dropin module
under a C{twisted/plugins} folder on C{sys.path}. Ours is
C{twisted/plugins/sipevents_packages.py}, which exposes
L{sipevents.packages.presence.PresencePackage} (RFC 3856) and
L{sipevents.packages.messagesummary.MessageSummaryPackage} (RFC 3842); a
third-party distribution ships its own dropin, so C{pip install} of it adds
its package to C{twistd sipevents} without editing our code.

Choices made here:

  - Package names and event types are compared byte by byte, as RFC 6665
    section 8.2.1 says for the event-type part of the Event header:
    C{Presence} is not C{presence}.
  - A package's C{templates} lists the template chains it serves as written
    after the package name: C{("winfo",)} serves C{presence.winfo} only;
    C{presence.winfo.winfo} (RFC 6665 section 5.2) would need
    C{"winfo.winfo"} listed as well.
  - When two installed plugins have the same name, a third-party one wins
    over a built-in one (so a distribution can replace our presence
    package); between two third-party ones the first found is kept. Both
    cases are logged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from types import ModuleType

from twisted.logger import Logger
from twisted.plugin import getPlugins
from zope.interface import implementer

from sipevents.errors import BadEvent
from sipevents.interfaces import IEventPackage, IPackageRegistry
from sipevents.sip.headers import Event

__all__ = ["PackageRegistry", "discoverPackages"]

_log = Logger(namespace="sipevents.packages")


@implementer(IPackageRegistry)
class PackageRegistry:
    """
    The event packages a notifier serves, by name (RFC 6665 section 5.4.1),
    in the order registered.

    The notifier resolves the Event header of every SUBSCRIBE through
    L{resolve}, the PUBLISH handler that of every PUBLISH, and both list
    L{eventTypes} in C{Allow-Events} (RFC 6665 section 4.4.4).
    """

    __slots__ = ("_packages", "_eventTypes", "_publishTypes")

    def __init__(self, packages: Iterable[IEventPackage] = ()) -> None:
        """
        @param packages: packages to L{register} at once, in order.
        """
        self._packages: dict[str, IEventPackage] = {}
        self._eventTypes: list[str] = []
        self._publishTypes: tuple[str, ...] = ()
        for package in packages:
            self.register(package)

    def __repr__(self) -> str:
        return f"<PackageRegistry {' '.join(self._packages)}>"

    def __iter__(self) -> Iterator[IEventPackage]:
        return iter(list(self._packages.values()))

    def __len__(self) -> int:
        return len(self._packages)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._packages

    def register(self, package: IEventPackage) -> None:
        """
        Serve C{package} from now on.

        @raise ValueError: when a package of that name is registered already.
        """
        name: str = package.name
        if name in self._packages:
            raise ValueError(f"An event package named {name!r} is registered already")
        self._packages[name] = package
        self._refresh()

    def unregister(self, name: str) -> IEventPackage:
        """
        Stop serving the package called C{name}.

        @return: the package removed.
        @raise KeyError: when there is none of that name.
        """
        package = self._packages.pop(name)
        self._refresh()
        return package

    def _refresh(self) -> None:
        """
        Recompute what is derived from the packages, once per change rather
        than once per request.
        """
        eventTypes: list[str] = []
        publishTypes: dict[str, None] = {}
        for name, package in self._packages.items():
            eventTypes.append(name)
            eventTypes.extend(f"{name}.{template}" for template in package.templates)
            for mimeType in package.publishContentTypes:
                publishTypes[mimeType] = None
        self._eventTypes = eventTypes
        self._publishTypes = tuple(publishTypes)

    def get(self, name: str) -> IEventPackage | None:
        """
        The package called C{name} (C{"presence"}, no template), or C{None}.
        """
        return self._packages.get(name)

    def eventTypes(self) -> list[str]:
        """
        Every event type served, for C{Allow-Events} (RFC 6665 section
        4.4.4): each package name, followed by C{name.template} for each of
        its templates.
        """
        return list(self._eventTypes)

    def publishContentTypes(self) -> tuple[str, ...]:
        """
        The union of the packages' PUBLISH body types, in order: what the
        PUBLISH handler accepts at all (RFC 3261 section 8.2.3).
        """
        return self._publishTypes

    def resolve(self, event: Event | None) -> IEventPackage:
        """
        The package that serves the event type of an Event header (RFC 6665
        section 4.2.1.1, RFC 3903 section 6 step 2).

        @param event: the request's Event header, or C{None} when it has
            none.
        @raise BadEvent: 489 with C{Allow-Events} listing L{eventTypes}, when
            the header is missing, names a package we do not serve, or a
            template the package does not serve.
        """
        if event is None:
            raise BadEvent(self._eventTypes, "Missing Event Header")
        return self._lookup(event.package, ".".join(event.templates))

    def resolveEventType(self, eventType: str) -> IEventPackage:
        """
        The package that serves C{eventType} (C{"presence"},
        C{"presence.winfo"}), as L{resolve} does for an Event header.

        @raise BadEvent: as L{resolve} does.
        """
        name, _, templates = eventType.partition(".")
        return self._lookup(name, templates)

    def _lookup(self, name: str, templates: str) -> IEventPackage:
        """
        The package called C{name}, which must serve the template chain
        C{templates} (C{""} for none).

        @raise BadEvent: as L{resolve} does.
        """
        package = self._packages.get(name)
        if package is None:
            raise BadEvent(self._eventTypes)
        if templates and templates not in package.templates:
            raise BadEvent(self._eventTypes, "Unsupported Event Template")
        return package


def _isBuiltIn(package: IEventPackage) -> bool:
    """
    Whether C{package} is one of ours rather than a third party's.
    """
    module: str = type(package).__module__
    return module.startswith("sipevents.")


def discoverPackages(
    names: Sequence[str] | None = None, pluginPackage: ModuleType | None = None
) -> list[IEventPackage]:
    """
    Find the installed event packages: every L{IEventPackage} plugin
    (C{twisted.plugin.getPlugins}) in the C{twisted.plugins} namespace, ours
    and those of any distribution installed beside us.

    @param names: the package names wanted, in the order wanted (the
        C{--package} options of C{twistd sipevents}); C{None} for every
        installed package, sorted by name.
    @param pluginPackage: the plugin package to search; C{twisted.plugins}
        by default (tests pass their own).
    @return: the packages.
    @raise ValueError: naming every wanted package that is not installed,
        and those that are.
    """
    found: dict[str, IEventPackage] = {}
    for package in getPlugins(IEventPackage, pluginPackage):
        name: str = package.name
        previous = found.get(name)
        if previous is None:
            found[name] = package
        elif _isBuiltIn(previous) and not _isBuiltIn(package):
            _log.info(
                "Event package {name} from {module} replaces the built-in one",
                name=name,
                module=type(package).__module__,
            )
            found[name] = package
        else:
            _log.warn(
                "Two installed event packages are named {name}: kept the one "
                "from {kept}, ignored the one from {ignored}",
                name=name,
                kept=type(previous).__module__,
                ignored=type(package).__module__,
            )
    if names is None:
        return [found[name] for name in sorted(found)]
    unknown = [name for name in names if name not in found]
    if unknown:
        raise ValueError(
            f"Unknown event package(s): {', '.join(unknown)}; "
            f"installed: {', '.join(sorted(found)) or 'none'}"
        )
    wanted: dict[str, IEventPackage] = {}
    for name in names:
        wanted[name] = found[name]
    return list(wanted.values())
