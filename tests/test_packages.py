# -*- test-case-name: tests.test_packages -*-
"""
Tests for L{sipevents.packages}: the package registry (RFC 6665 section 5.4,
489 with Allow-Events per section 4.2.1.1 and 4.4.4) and the discovery of
event packages as Twisted plugins, built-in and third-party.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Sequence
from types import ModuleType

from twisted.plugin import IPlugin
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from sipevents.errors import BadEvent
from sipevents.interfaces import IEventPackage, IPackageRegistry
from sipevents.packages import PackageRegistry, discoverPackages
from sipevents.packages.messagesummary import MessageSummaryPackage
from sipevents.packages.presence import PresencePackage
from sipevents.records import SubscriptionRecord
from sipevents.sip.headers import parseEvent


@implementer(IEventPackage)
class FakePackage:
    """
    A minimal event package for registry tests.
    """

    contentTypes = ("text/plain",)
    defaultExpires = 3600
    minExpires = 60
    maxExpires = 7200
    minNotifyInterval = 1.0

    def __init__(
        self,
        name: str,
        templates: tuple[str, ...] = (),
        publishContentTypes: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.templates = templates
        self.publishContentTypes = publishContentTypes

    def parsePublication(self, contentType: str, body: bytes) -> object:
        return body

    def composeState(self, resource: str, documents: Sequence[object]) -> object:
        return documents[-1]

    def renderState(
        self, state: object | None, contentType: str, subscription: SubscriptionRecord
    ) -> bytes:
        return b""


class PackageRegistryTests(SynchronousTestCase):
    """
    L{PackageRegistry}: lookup by name, Allow-Events, and 489 for what is not
    served.
    """

    def setUp(self) -> None:
        self.presence = FakePackage("presence", ("winfo",), ("application/pidf+xml",))
        self.mwi = FakePackage(
            "message-summary", (), ("application/simple-message-summary",)
        )
        self.registry = PackageRegistry([self.presence, self.mwi])

    def test_verifyObject(self) -> None:
        """
        L{PackageRegistry} provides L{IPackageRegistry}, what the notifier
        and the publication manager look packages up in.
        """
        self.assertTrue(verifyObject(IPackageRegistry, self.registry))

    def test_get(self) -> None:
        """
        L{PackageRegistry.get} finds a package by name (RFC 6665 section
        5.4.1) and gives C{None} for another.
        """
        self.assertIs(self.registry.get("presence"), self.presence)
        self.assertIs(self.registry.get("message-summary"), self.mwi)
        self.assertIsNone(self.registry.get("dialog"))

    def test_iterationAndContainment(self) -> None:
        """
        A registry iterates over its packages in registration order, has a
        length, and contains package names.
        """
        self.assertEqual(list(self.registry), [self.presence, self.mwi])
        self.assertEqual(len(self.registry), 2)
        self.assertIn("presence", self.registry)
        self.assertNotIn("dialog", self.registry)
        self.assertNotIn(1, self.registry)

    def test_rfc6665_4_4_4_eventTypes(self) -> None:
        """
        L{PackageRegistry.eventTypes}, the Allow-Events list (RFC 6665
        section 4.4.4), names each package and each template it serves
        (section 5.2).
        """
        self.assertEqual(
            self.registry.eventTypes(),
            ["presence", "presence.winfo", "message-summary"],
        )

    def test_registerDuplicate(self) -> None:
        """
        Registering a second package with a registered name is an error.
        """
        self.assertRaises(ValueError, self.registry.register, FakePackage("presence"))

    def test_unregister(self) -> None:
        """
        L{PackageRegistry.unregister} removes a package and its event types.
        """
        self.assertIs(self.registry.unregister("presence"), self.presence)
        self.assertEqual(self.registry.eventTypes(), ["message-summary"])
        self.assertRaises(KeyError, self.registry.unregister, "presence")

    def test_rfc3903_6_publishContentTypes(self) -> None:
        """
        L{PackageRegistry.publishContentTypes} is the union of the packages'
        PUBLISH body types, in order (what a PUBLISH body may be at all).
        """
        self.registry.register(FakePackage("other", (), ("application/pidf+xml",)))
        self.assertEqual(
            self.registry.publishContentTypes(),
            ("application/pidf+xml", "application/simple-message-summary"),
        )

    def test_rfc6665_4_2_1_1_resolve(self) -> None:
        """
        L{PackageRegistry.resolve} gives the package of an Event header, and
        of a template the package serves (RFC 6665 section 5.2).
        """
        self.assertIs(self.registry.resolve(parseEvent("presence")), self.presence)
        self.assertIs(
            self.registry.resolve(parseEvent("presence.winfo;id=1")), self.presence
        )
        self.assertIs(self.registry.resolve(parseEvent("message-summary")), self.mwi)

    def assertBadEvent(self, error: BadEvent) -> None:
        """
        C{error} is a 489 whose Allow-Events lists every event type served.
        """
        self.assertEqual(error.status, 489)
        self.assertEqual(
            error.headers,
            [("Allow-Events", "presence, presence.winfo, message-summary")],
        )

    def test_rfc6665_4_2_1_1_missingEvent489(self) -> None:
        """
        A request without an Event header gets 489 with Allow-Events (RFC
        6665 section 4.2.1.1 and 4.4.4; PINT is not supported).
        """
        error = self.assertRaises(BadEvent, self.registry.resolve, None)
        self.assertBadEvent(error)

    def test_rfc6665_4_2_1_1_unknownEvent489(self) -> None:
        """
        An Event of a package we do not serve gets 489 with Allow-Events.
        """
        error = self.assertRaises(BadEvent, self.registry.resolve, parseEvent("dialog"))
        self.assertBadEvent(error)

    def test_rfc6665_8_2_1_eventTypeCaseSensitive(self) -> None:
        """
        Event types compare byte by byte (RFC 6665 section 8.2.1):
        C{Presence} is not C{presence}.
        """
        self.assertRaises(BadEvent, self.registry.resolve, parseEvent("Presence"))

    def test_rfc6665_5_2_unservedTemplate489(self) -> None:
        """
        A template the package does not serve gets 489 (RFC 6665 section
        5.2): C{message-summary.winfo}, and C{presence.winfo.winfo} when only
        C{winfo} is served.
        """
        error = self.assertRaises(
            BadEvent, self.registry.resolve, parseEvent("message-summary.winfo")
        )
        self.assertBadEvent(error)
        self.assertRaises(
            BadEvent, self.registry.resolve, parseEvent("presence.winfo.winfo")
        )

    def test_resolveEventType(self) -> None:
        """
        L{PackageRegistry.resolveEventType} does for an event type string
        what L{PackageRegistry.resolve} does for an Event header.
        """
        self.assertIs(self.registry.resolveEventType("presence"), self.presence)
        self.assertIs(self.registry.resolveEventType("presence.winfo"), self.presence)
        self.assertRaises(BadEvent, self.registry.resolveEventType, "dialog")
        self.assertRaises(
            BadEvent, self.registry.resolveEventType, "message-summary.winfo"
        )

    def test_emptyRegistry489(self) -> None:
        """
        A registry with no packages answers 489 without Allow-Events.
        """
        error = self.assertRaises(
            BadEvent, PackageRegistry().resolve, parseEvent("presence")
        )
        self.assertEqual(error.headers, [])


THIRD_PARTY_DROPIN = """
from twisted.plugin import IPlugin
from zope.interface import implementer

from sipevents.interfaces import IEventPackage
from sipevents.packages.messagesummary import MessageSummaryPackage
from sipevents.packages.presence import PresencePackage


@implementer(IPlugin, IEventPackage)
class DialogPackage:
    name = "dialog"
    templates = ()
    contentTypes = ("application/dialog-info+xml",)
    publishContentTypes = ()
    defaultExpires = 3600
    minExpires = 60
    maxExpires = 3600
    minNotifyInterval = 1.0

    def parsePublication(self, contentType, body):
        return body

    def composeState(self, resource, documents):
        return documents[-1]

    def renderState(self, state, contentType, subscription):
        return b""


class BetterPresence(PresencePackage):
    pass


dialog = DialogPackage()
builtinPresence = PresencePackage()
betterPresence = BetterPresence()
messageSummary = MessageSummaryPackage()
"""


class DiscoveryTests(SynchronousTestCase):
    """
    L{discoverPackages}: event packages are Twisted plugins, so installing
    a distribution that ships a dropin adds its package.
    """

    def test_repositoryDropinOnPluginPath(self) -> None:
        """
        Run from a checkout, C{twisted/plugins} of the checkout is part of
        the C{twisted.plugins} package path (Twisted adds every
        C{twisted/plugins} folder on C{sys.path}), which is how our dropin
        is found before installation.
        """
        import twisted.plugins

        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        paths = [os.path.abspath(p) for p in twisted.plugins.__path__]
        self.assertIn(os.path.join(here, "twisted", "plugins"), paths)

    def test_builtInPackagesDiscovered(self) -> None:
        """
        The built-in packages, presence (RFC 3856) and message-summary (RFC
        3842), are found through the plugin system like any other, sorted
        by name.
        """
        packages = discoverPackages()
        names = [package.name for package in packages]
        self.assertIn("presence", names)
        self.assertIn("message-summary", names)
        self.assertEqual(names, sorted(names))
        byName = {package.name: package for package in packages}
        self.assertIsInstance(byName["presence"], PresencePackage)
        self.assertIsInstance(byName["message-summary"], MessageSummaryPackage)

    def test_namedPackages(self) -> None:
        """
        Asking for packages by name gives them in the order asked, once.
        """
        packages = discoverPackages(["presence", "message-summary", "presence"])
        self.assertEqual(
            [package.name for package in packages], ["presence", "message-summary"]
        )

    def test_unknownNames(self) -> None:
        """
        Asking for packages that are not installed raises L{ValueError}
        naming them and the installed ones.
        """
        error = self.assertRaises(
            ValueError, discoverPackages, ["presence", "dialog", "reg"]
        )
        self.assertIn("dialog, reg", str(error))
        self.assertIn("message-summary, presence", str(error))

    def test_dropinProvidesPlugins(self) -> None:
        """
        Our dropin's objects provide both L{IPlugin} and L{IEventPackage}.
        """
        from twisted.plugins import sipevents_packages

        for package in (sipevents_packages.presence, sipevents_packages.messageSummary):
            self.assertTrue(verifyObject(IPlugin, package))
            self.assertTrue(verifyObject(IEventPackage, package))

    def installThirdParty(self) -> ModuleType:
        """
        Make a plugin package, as a third-party distribution would install
        one, with a dropin offering a C{dialog} package and a replacement
        C{presence}, and import it.
        """
        base = os.path.abspath(self.mktemp())
        name = "sipevents_test_plugins_" + os.path.basename(base).replace("-", "_")
        package = os.path.join(base, name)
        os.makedirs(package)
        with open(os.path.join(package, "__init__.py"), "w") as f:
            f.write("")
        with open(os.path.join(package, "thirdparty.py"), "w") as f:
            f.write(textwrap.dedent(THIRD_PARTY_DROPIN))
        sys.path.insert(0, base)
        self.addCleanup(sys.path.remove, base)
        module = __import__(name)
        self.addCleanup(sys.modules.pop, name, None)
        self.addCleanup(sys.modules.pop, f"{name}.thirdparty", None)
        return module

    def test_thirdPartyPackage(self) -> None:
        """
        A third-party dropin's package is discovered, and a third-party
        package named like a built-in one replaces it.
        """
        plugins = self.installThirdParty()
        packages = discoverPackages(pluginPackage=plugins)
        byName = {package.name: package for package in packages}
        self.assertEqual(sorted(byName), ["dialog", "message-summary", "presence"])
        self.assertEqual(type(byName["dialog"]).__name__, "DialogPackage")
        self.assertEqual(type(byName["presence"]).__name__, "BetterPresence")
        self.assertTrue(verifyObject(IEventPackage, byName["dialog"]))
        registry = PackageRegistry(packages)
        self.assertEqual(
            registry.eventTypes(), ["dialog", "message-summary", "presence"]
        )
