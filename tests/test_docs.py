# -*- test-case-name: tests.test_docs -*-
"""
The code of the documentation runs: the tutorial's event package, its
tests and its C{station.tac} (C{docs/tutorial-package.rst}), the worked
example of C{docs/testing.rst} and the ten-line watcher of
C{docs/subscriber.rst}, each taken from its page and driven with
L{sipevents.testing.connectedPair}, so that no page drifts from the code.

A block is found by its C{:caption:}, the file name the page gives it.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import tomllib
import twisted.plugins
from twisted.application.internet import TimerService
from twisted.application.service import IServiceCollection, Service
from twisted.internet import task
from twisted.internet.defer import Deferred, succeed
from twisted.trial.reporter import TestResult
from twisted.trial.runner import TestLoader
from twisted.trial.unittest import SynchronousTestCase

import sipevents.app.service
import sipevents.subscriber.client
from sipevents.interfaces import IEventPackage
from sipevents.testing import ConnectedPair, connectedPair

DOCS = Path(__file__).resolve().parent.parent / "docs"


@dataclass(frozen=True)
class CodeBlock:
    """
    One C{.. code-block::} of a page.

    @ivar language: its language, e.g. C{"python"}.
    @ivar caption: its C{:caption:}, or C{None}.
    @ivar code: its text, unindented.
    @ivar line: the line of the directive, from 1.
    """

    language: str
    caption: str | None
    code: str
    line: int


def codeBlocks(page: str) -> list[CodeBlock]:
    """
    The code blocks of C{docs/page}, in order.
    """
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith(".. code-block::"):
            i += 1
            continue
        start = i + 1
        language = line.split("::", 1)[1].strip()
        caption = None
        i += 1
        while i < len(lines) and lines[i].strip().startswith(":"):
            name, _, value = lines[i].strip()[1:].partition(":")
            if name == "caption":
                caption = value.strip()
            i += 1
        body = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
            body.append(lines[i])
            i += 1
        indents = [len(b) - len(b.lstrip()) for b in body if b.strip()]
        indent = min(indents, default=0)
        code = "\n".join(b[indent:] for b in body).strip("\n") + "\n"
        blocks.append(CodeBlock(language, caption, code, start))
    return blocks


def block(page: str, caption: str) -> str:
    """
    The code of the block of C{page} captioned C{caption}.
    """
    [found] = [b.code for b in codeBlocks(page) if b.caption == caption]
    return found


class DocsTestCase(SynchronousTestCase):
    """
    Write a page's files to a temporary folder and import them from it.
    """

    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        self.root.mkdir()

    def writeBlocks(self, page: str, *captions: str) -> None:
        """
        Write the blocks of C{page} captioned C{captions}, each at the path
        its caption names, under L{root}.
        """
        for caption in captions:
            path = self.root / caption
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block(page, caption), encoding="utf-8")

    def importPackage(self, name: str) -> ModuleType:
        """
        Import the package C{name} written under L{root}, and forget it
        once the test is over.
        """
        sys.path.insert(0, str(self.root))
        self.addCleanup(sys.path.remove, str(self.root))
        self.addCleanup(self.forget, name)
        return importlib.import_module(name)

    def importFile(self, relative: str, name: str) -> ModuleType:
        """
        Import the file C{relative} under L{root} as module C{name} (the
        pages' C{tests} packages would shadow ours).
        """
        spec = importlib.util.spec_from_file_location(name, self.root / relative)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        self.addCleanup(self.forget, name)
        spec.loader.exec_module(module)
        return module

    def forget(self, name: str) -> None:
        for loaded in list(sys.modules):
            if loaded == name or loaded.startswith(name + "."):
                del sys.modules[loaded]

    def runTests(self, module: ModuleType) -> TestResult:
        """
        Run the trial tests of C{module}; fail this test with their output
        unless they all pass.
        """
        result = TestResult()
        TestLoader().loadModule(module).run(result)
        problems = [str(failure) for _, failure in result.errors + result.failures]
        self.assertEqual(problems, [])
        self.assertTrue(result.wasSuccessful())
        return result


#: The Python blocks of each page, by caption: each is run below.
RUN = {
    "tutorial-package.rst": {
        "sipevents_weather/__init__.py",
        "twisted/plugins/sipevents_weather_plugin.py",
        "tests/test_weather.py",
        "station.tac",
    },
    "testing.rst": {"statusboard/__init__.py", "statusboard/test_statusboard.py"},
    "subscriber.rst": {"watch_alice.py"},
}


class CodeBlockTests(SynchronousTestCase):
    """
    L{codeBlocks} finds the blocks, and every Python block is run here.
    """

    def test_everyBlockRun(self) -> None:
        """
        The Python blocks of the pages are those the tests below run: a new
        one must be run too.
        """
        for page, captions in RUN.items():
            python = [b.caption for b in codeBlocks(page) if b.language == "python"]
            self.assertEqual(sorted(python, key=str), sorted(captions), page)

    def test_unindented(self) -> None:
        """
        A block's code is its body without the directive's indent, options
        or surrounding blank lines.
        """
        [first, *_] = codeBlocks("tutorial-package.rst")
        self.assertEqual((first.language, first.caption), ("toml", "pyproject.toml"))
        self.assertTrue(first.code.startswith("[build-system]\n"))
        self.assertTrue(first.code.endswith('"twisted.plugins"]\n'))


class TutorialTests(DocsTestCase):
    """
    C{docs/tutorial-package.rst}: the weather package.
    """

    page = "tutorial-package.rst"

    def setUp(self) -> None:
        super().setUp()
        self.writeBlocks(
            self.page,
            "pyproject.toml",
            "sipevents_weather/__init__.py",
            "twisted/plugins/sipevents_weather_plugin.py",
            "tests/test_weather.py",
        )
        self.weather = self.importPackage("sipevents_weather")
        # The dropin is found as pip would install it: in a twisted/plugins
        # folder on the path of the plugin package.
        plugins = str(self.root / "twisted" / "plugins")
        self.patch(twisted.plugins, "__path__", [*twisted.plugins.__path__, plugins])
        self.addCleanup(self.forget, "twisted.plugins.sipevents_weather_plugin")

    def test_project(self) -> None:
        """
        The project names the package and the dropin, and the dropin's
        folders have no C{__init__.py}.
        """
        project = tomllib.loads(block(self.page, "pyproject.toml"))
        self.assertEqual(project["project"]["dependencies"], ["sipevents"])
        self.assertEqual(
            project["tool"]["setuptools"]["packages"],
            ["sipevents_weather", "twisted.plugins"],
        )
        self.assertFalse((self.root / "twisted" / "__init__.py").exists())
        self.assertFalse((self.root / "twisted" / "plugins" / "__init__.py").exists())

    def test_tutorialTests(self) -> None:
        """
        The page's tests pass, as many as it says.
        """
        module = self.importFile("tests/test_weather.py", "_tutorial_test_weather")
        result = self.runTests(module)
        self.assertEqual(result.testsRun, 5)
        self.assertIn("The five tests pass.", (DOCS / self.page).read_text())

    def test_watchAndPublish(self) -> None:
        """
        What the page shows SIPp seeing happens: the neutral state, then
        the published report a second later; a bad report gets 400.
        """
        package = self.weather.WeatherPackage()
        self.assertIsInstance(package, self.weather.WeatherPackage)
        self.assertTrue(IEventPackage.providedBy(package))
        pair = connectedPair(packages=[package])
        self.addCleanup(pair.stop)
        subscription = pair.subscriber.subscribe(
            pair.target("paris"), "weather", expires=600
        )
        pair.pump()
        first = self.successResultOf(subscription.whenActive())
        self.assertEqual(first.contentType, "application/vnd.example.weather+json")
        self.assertEqual(
            json.loads(first.body), {"station": "sip:paris@127.0.0.1", "sky": "unknown"}
        )
        self.assertEqual(str(first.subscriptionState), "active;expires=600")

        report = b'{"sky": "sunny", "celsius": 21.5}'
        weather = self.weather.WEATHER
        published = pair.publish(report, weather, user="paris", event="weather")
        pair.pump()
        self.assertEqual(self.successResultOf(published).code, 200)
        pair.advance(0.99)
        self.assertIs(subscription.notification, first)
        pair.advance(0.01)
        notification = subscription.notification
        assert notification is not None
        self.assertEqual(
            json.loads(notification.body),
            {"station": "sip:paris@127.0.0.1", "sky": "sunny", "celsius": 21.5},
        )

        bad = pair.publish(b'{"celsius": 20}', weather, user="paris", event="weather")
        pair.pump()
        response = self.successResultOf(bad)
        self.assertEqual(
            (response.code, response.reason), (400, "Bad weather report: 'sky'")
        )

    def test_station(self) -> None:
        """
        C{station.tac} makes an application with the service and a
        five-second timer whose call sets the state every watcher hears,
        once the service is ready.
        """
        pair = connectedPair(packages=[self.weather.WeatherPackage()])
        self.addCleanup(pair.stop)
        made: list[FakeService] = []

        def service(descriptions: list[str]) -> FakeService:
            made.append(FakeService(descriptions, pair))
            return made[-1]

        self.patch(sipevents.app.service, "SIPEventsService", service)
        namespace: dict[str, Any] = {"__name__": "__station__"}
        exec(compile(block(self.page, "station.tac"), "station.tac", "exec"), namespace)
        [sip] = made
        self.assertEqual(sip.descriptions, ["udp:5060:interface=127.0.0.1"])
        services = list(IServiceCollection(namespace["application"]))
        self.assertIn(sip, services)
        [timer] = [s for s in services if isinstance(s, TimerService)]
        self.assertEqual(timer.step, 5)
        measure: Callable[[], None] = timer.call[0]  # type: ignore[attr-defined]

        subscription = pair.subscriber.subscribe(pair.target("paris"), "weather")
        pair.pump()
        first = self.successResultOf(subscription.whenActive())
        sip.ready = False
        measure()
        pair.advance(1)
        self.assertIs(subscription.notification, first)
        sip.ready = True
        measure()
        pair.advance(1)
        notification = subscription.notification
        assert notification is not None
        report = json.loads(notification.body)
        self.assertIn(report.pop("sky"), {"sunny", "cloudy", "rain"})
        self.assertEqual(report, {"station": "sip:paris@127.0.0.1", "celsius": 18.5})


class FakeService(Service):
    """
    Stands in for L{sipevents.app.service.SIPEventsService} in
    C{station.tac}: the notifier is the pair's, and the test says when it
    is ready.
    """

    def __init__(self, descriptions: list[str], pair: ConnectedPair) -> None:
        self.descriptions = descriptions
        self.notifier = pair.notifier
        self.ready = False


class TestingPageTests(DocsTestCase):
    """
    C{docs/testing.rst}: the worked example.
    """

    def test_workedExample(self) -> None:
        """
        The status board's tests pass.
        """
        page = "testing.rst"
        self.writeBlocks(
            page, "statusboard/__init__.py", "statusboard/test_statusboard.py"
        )
        self.importPackage("statusboard")
        module = importlib.import_module("statusboard.test_statusboard")
        self.assertEqual(self.runTests(module).testsRun, 3)


class FakeReactor:
    """
    What the watcher of C{docs/subscriber.rst} asks of its reactor.
    """

    def __init__(self) -> None:
        self.triggers: list[tuple[str, str, Callable[[], object]]] = []

    def addSystemEventTrigger(
        self, phase: str, event: str, callable: Callable[[], object]
    ) -> None:
        self.triggers.append((phase, event, callable))


class FakeClient:
    """
    What C{startSubscriber} gives, on the pair's subscriber.
    """

    def __init__(self, pair: ConnectedPair) -> None:
        self.subscriber = pair.subscriber

    def stop(self) -> Deferred[None]:
        return self.subscriber.stop()


class SubscriberPageTests(DocsTestCase):
    """
    C{docs/subscriber.rst}: the ten lines that watch a presence.
    """

    def test_watchAlice(self) -> None:
        """
        Against our notifier, the program prints the first NOTIFY, then a
        change, then (when the reactor shuts down) the final NOTIFY, and
        ends.
        """
        pair = connectedPair()
        self.addCleanup(pair.stop)
        reactor = FakeReactor()
        started: list[object] = []
        printed: list[str] = []

        def startSubscriber(given: object) -> Deferred[FakeClient]:
            started.append(given)
            return succeed(FakeClient(pair))

        ran: list[Deferred[object]] = []

        def react(main: Callable[[object], Any]) -> None:
            ran.append(Deferred.fromCoroutine(main(reactor)))

        def record(*args: object, flush: bool = False) -> None:
            printed.append(" ".join(str(a) for a in args))

        self.patch(sipevents.subscriber.client, "startSubscriber", startSubscriber)
        self.patch(task, "react", react)
        code = block("subscriber.rst", "watch_alice.py")
        self.assertLessEqual(len([line for line in code.splitlines() if line]), 16)
        namespace: dict[str, Any] = {"__name__": "__main__", "print": record}
        exec(compile(code, "watch_alice.py", "exec"), namespace)
        [running] = ran
        self.assertEqual(started, [reactor])
        pair.pump()
        [line] = printed
        self.assertTrue(line.startswith("active;expires=3600 <?xml"), line)
        self.assertIn('entity="sip:alice@127.0.0.1"', line)

        pidf = (
            b'<?xml version="1.0" encoding="UTF-8"?>'
            b'<presence xmlns="urn:ietf:params:xml:ns:pidf"'
            b' entity="sip:alice@127.0.0.1"><tuple id="sipp">'
            b"<status><basic>open</basic></status></tuple></presence>"
        )
        published = pair.publish(pidf, "application/pidf+xml", user="alice")
        pair.pump()
        self.assertEqual(self.successResultOf(published).code, 200)
        pair.advance(5)
        self.assertEqual(len(printed), 2)
        self.assertIn("<basic>open</basic>", printed[1])
        self.assertNoResult(running)

        [(phase, event, stop)] = reactor.triggers
        self.assertEqual((phase, event), ("before", "shutdown"))
        stopped = stop()
        pair.pump()
        self.successResultOf(stopped)  # type: ignore[arg-type]
        self.assertTrue(printed[2].startswith("terminated;reason=timeout <?xml"))
        self.successResultOf(running)
