# -*- test-case-name: tests.test_presence -*-
"""
Tests for L{sipevents.packages.presence}: the presence event package (RFC
3856) and PIDF (RFC 3863): safe XML parsing, document checks, composition
of several publications, neutral state and rendering.
"""

from __future__ import annotations

from twisted.plugin import IPlugin
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from sipevents.errors import SIPError
from sipevents.interfaces import IEventPackage
from sipevents.packages.presence import (
    PIDF_NAMESPACE,
    PIDF_TYPE,
    PIDFDocument,
    PresencePackage,
    PresenceState,
    UnsafeXML,
    composePresence,
    neutralDocument,
    parsePIDF,
    parseXML,
)
from sipevents.records import ACTIVE, PENDING, SubscriptionRecord

PIDF = "{urn:ietf:params:xml:ns:pidf}"

#: RFC 3863 section 4.2.2, with a default namespace.
SIMPLE = b"""<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    entity="pres:someone@example.com">
  <tuple id="sg89ae">
    <status>
      <basic>open</basic>
    </status>
    <contact priority="0.8">tel:+09012345678</contact>
  </tuple>
</presence>
"""

#: RFC 3863 section 4.2.2, with a prefix.
PREFIXED = b"""<?xml version="1.0" encoding="UTF-8"?>
<impp:presence xmlns:impp="urn:ietf:params:xml:ns:pidf"
    entity="pres:someone@example.com">
  <impp:tuple id="sg89ae">
    <impp:status>
      <impp:basic>closed</impp:basic>
    </impp:status>
    <impp:contact priority="0.8">tel:+09012345678</impp:contact>
  </impp:tuple>
</impp:presence>
"""

#: RFC 3863 section 4.3.1: status extensions and notes.
EXTENDED = b"""<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
     xmlns:im="urn:ietf:params:xml:ns:pidf:im"
     xmlns:myex="http://id.example.com/presence/"
     entity="pres:someone@example.com">
  <tuple id="bs35r9">
    <status>
      <basic>open</basic>
      <im:im>busy</im:im>
      <myex:location>home</myex:location>
    </status>
    <contact priority="0.8">im:someone@mobilecarrier.net</contact>
    <note xml:lang="en">Don't Disturb Please!</note>
    <note xml:lang="fr">Ne derangez pas, s'il vous plait</note>
    <timestamp>2001-10-27T16:49:29Z</timestamp>
  </tuple>
  <tuple id="eg92n8">
    <status>
      <basic>open</basic>
    </status>
    <contact priority="1.0">mailto:someone@example.com</contact>
  </tuple>
  <note>I'll be in Tokyo next week</note>
</presence>
"""

#: RFC 3863 section 4.3.3: mustUnderstand, an attribute in the PIDF
#: namespace, and a top-level extension.
MUST_UNDERSTAND = b"""<?xml version="1.0" encoding="UTF-8"?>
<impp:presence xmlns:impp="urn:ietf:params:xml:ns:pidf"
     xmlns:myex="http://id.mycompany.com/presence/"
     entity="pres:someone@example.com">
  <impp:tuple id="tj25ds">
    <impp:status>
      <impp:basic>open</impp:basic>
    </impp:status>
    <myex:complexExtension>
      <myex:ex1 impp:mustUnderstand="1">val1</myex:ex1>
      <myex:ex2>val2</myex:ex2>
    </myex:complexExtension>
    <impp:contact priority="0.725">tel:+09012345678</impp:contact>
  </impp:tuple>
  <myex:mytag>My extended presentity information</myex:mytag>
</impp:presence>
"""

#: The classic entity expansion bomb ("billion laughs").
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@127.0.0.1">
<note>&lol9;</note>
</presence>
"""

#: An external entity (XXE) that would read a local file.
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE presence [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@127.0.0.1">
<note>&xxe;</note>
</presence>
"""

#: An external DTD with a parameter entity.
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE presence SYSTEM "http://127.0.0.1:9/evil.dtd">
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@127.0.0.1"/>
"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE presence [ <!ENTITY % remote SYSTEM "http://127.0.0.1:9/x"> %remote; ]>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@127.0.0.1"/>
"""


def pidf(*tuples: str, extra: str = "", namespaces: str = "") -> bytes:
    """
    A PIDF document with the given tuple and other markup.
    """
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<presence xmlns="{PIDF_NAMESPACE}" {namespaces} '
        'entity="sip:publisher@127.0.0.1">' + "".join(tuples) + extra + "</presence>"
    ).encode()


def tuple_(tupleId: str, basic: str = "open", extra: str = "") -> str:
    """
    A PIDF tuple.
    """
    return (
        f'<tuple id="{tupleId}"><status><basic>{basic}</basic></status>{extra}</tuple>'
    )


def subscription(
    resource: str = "sip:bob@127.0.0.1", state: str = ACTIVE
) -> SubscriptionRecord:
    """
    A subscription record to render for.
    """
    return SubscriptionRecord(
        key="k",
        resource=resource,
        eventType="presence",
        eventId=None,
        eventParams=(),
        state=state,
        expiresAt=3600.0,
        watcher="sip:alice@127.0.0.1",
        accept=(),
        callId="c@127.0.0.1",
        localTag="l",
        remoteTag="r",
        localUri=f"<{resource}>",
        remoteUri="<sip:alice@127.0.0.1>",
        remoteTarget="sip:alice@127.0.0.1:5070",
        routeSet=(),
        localCSeq=100,
        remoteCSeq=1,
        flowTransport="UDP",
        flowHost="127.0.0.1",
        flowPort=5070,
    )


class SafeXMLTests(SynchronousTestCase):
    """
    L{parseXML} parses untrusted XML without DTDs, entities or unbounded
    nesting (RFC 3903 section 14.2: denial of service).
    """

    def test_namespaces(self) -> None:
        """
        Element and attribute names come out with their namespace URIs,
        whatever the prefix (RFC 3863 section 4.2.1).
        """
        root = parseXML(PREFIXED)
        self.assertEqual(root.tag, f"{PIDF}presence")
        self.assertEqual(root[0].tag, f"{PIDF}tuple")
        root = parseXML(EXTENDED)
        note = root[0].find(f"{PIDF}note")
        assert note is not None
        self.assertEqual(note.get("{http://www.w3.org/XML/1998/namespace}lang"), "en")

    def test_billionLaughs(self) -> None:
        """
        An entity expansion bomb is refused: no document type declaration
        is accepted at all.
        """
        error = self.assertRaises(UnsafeXML, parseXML, BILLION_LAUGHS)
        self.assertIn("Document type declaration", str(error))

    def test_externalEntity(self) -> None:
        """
        An external entity (XXE) is refused before anything is fetched.
        """
        self.assertRaises(UnsafeXML, parseXML, EXTERNAL_ENTITY)
        self.assertRaises(UnsafeXML, parseXML, EXTERNAL_DTD)
        self.assertRaises(UnsafeXML, parseXML, PARAMETER_ENTITY)

    def test_undefinedEntity(self) -> None:
        """
        A reference to an entity that was never declared is an error, as
        XML requires without a DTD; the predefined ones work.
        """
        self.assertRaises(ValueError, parseXML, b"<a>&nope;</a>")
        self.assertEqual(parseXML(b"<a>&lt;&amp;&#65;</a>").text, "<&A")

    def test_depthLimit(self) -> None:
        """
        Nesting deeper than the limit is refused.
        """
        deep = b"<a>" * 65 + b"</a>" * 65
        self.assertRaises(UnsafeXML, parseXML, deep)
        self.assertEqual(parseXML(b"<a>" * 64 + b"</a>" * 64).tag, "a")

    def test_elementLimit(self) -> None:
        """
        More elements than the limit are refused.
        """
        many = b"<a>" + b"<b/>" * 20 + b"</a>"
        self.assertRaises(UnsafeXML, parseXML, many, 64, 20)
        self.assertEqual(len(parseXML(many, 64, 21)), 20)

    def test_notWellFormed(self) -> None:
        """
        Malformed XML raises L{ValueError} saying where.
        """
        error = self.assertRaises(ValueError, parseXML, b"<a><b></a>")
        self.assertIn("line 1", str(error))
        self.assertRaises(ValueError, parseXML, b"")
        self.assertRaises(ValueError, parseXML, b"<a/><b/>")

    def test_otherEncodings(self) -> None:
        """
        The encoding comes from the XML declaration (RFC 3863 section 4.1);
        UTF-16 with a byte order mark works too.
        """
        latin = '<?xml version="1.0" encoding="ISO-8859-1"?><a>caf\xe9</a>'
        self.assertEqual(parseXML(latin.encode("latin-1")).text, "caf\xe9")
        self.assertEqual(parseXML("<a>\u00e9t\u00e9</a>".encode("utf-16")).text, "été")


class ParsePIDFTests(SynchronousTestCase):
    """
    L{parsePIDF} checks a published document (RFC 3863 section 4.1) and
    answers 400 for a bad one.
    """

    def assertBad(self, body: bytes, reason: str) -> None:
        error = self.assertRaises(SIPError, parsePIDF, body)
        self.assertEqual(error.status, 400)
        self.assertIn(reason, error.reason)

    def test_rfc3863_4_2_2_examples(self) -> None:
        """
        The examples of RFC 3863 parse, with a default namespace or a
        prefix.
        """
        for body in (SIMPLE, PREFIXED):
            document = parsePIDF(body)
            self.assertEqual(document.entity, "pres:someone@example.com")
            self.assertEqual([t.get("id") for t in document.tuples], ["sg89ae"])
        self.assertEqual(dict(parsePIDF(PREFIXED).prefixes)[PIDF_NAMESPACE], "impp")

    def test_rfc3863_4_3_examples(self) -> None:
        """
        Tuples, presentity notes and extension elements are told apart
        (RFC 3863 section 4.1.1 and 4.3).
        """
        document = parsePIDF(EXTENDED)
        self.assertEqual([t.get("id") for t in document.tuples], ["bs35r9", "eg92n8"])
        self.assertEqual(len(document.notes), 1)
        self.assertEqual(document.extensions, ())
        document = parsePIDF(MUST_UNDERSTAND)
        self.assertEqual(
            [e.tag for e in document.extensions],
            ["{http://id.mycompany.com/presence/}mytag"],
        )

    def test_rfc3863_4_1_noTuples(self) -> None:
        """
        A presence document may have no tuples (RFC 3863 section 4.1.1).
        """
        self.assertEqual(parsePIDF(pidf()).tuples, ())

    def test_rfc3903_6_step5_xmlBombs(self) -> None:
        """
        XML bombs and external entities are refused with 400.
        """
        for body in (BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD, PARAMETER_ENTITY):
            self.assertBad(body, "not allowed")

    def test_rfc3863_4_1_notWellFormed(self) -> None:
        """
        A document that is not well-formed XML gets 400.
        """
        self.assertBad(b"<presence", "not well-formed")
        self.assertBad(b"\xff\xfe\x00garbage", "not well-formed")

    def test_rfc3863_4_1_1_rootElement(self) -> None:
        """
        The root must be C{<presence>} in the PIDF namespace.
        """
        self.assertBad(b'<presence entity="sip:a@b"/>', "not a PIDF")
        self.assertBad(
            b'<presence xmlns="urn:ietf:params:xml:ns:pidf:" entity="sip:a@b"/>',
            "not a PIDF",
        )
        self.assertBad(
            b'<tuple xmlns="urn:ietf:params:xml:ns:pidf" id="a"/>', "not a PIDF"
        )

    def test_rfc3863_4_1_1_entity(self) -> None:
        """
        C{<presence>} must have an C{entity}.
        """
        self.assertBad(b'<presence xmlns="urn:ietf:params:xml:ns:pidf"/>', "entity")

    def test_rfc3863_4_1_2_tupleId(self) -> None:
        """
        Every tuple has an C{id}, unique in the document.
        """
        self.assertBad(
            pidf("<tuple><status><basic>open</basic></status></tuple>"), "no id"
        )
        self.assertBad(pidf(tuple_("a"), tuple_("a")), "two tuples")

    def test_rfc3863_4_1_2_status(self) -> None:
        """
        Every tuple has a C{<status>}, whose C{<basic>} is C{open} or
        C{closed} (section 4.1.4).
        """
        self.assertBad(pidf('<tuple id="a"><note>x</note></tuple>'), "no <status>")
        self.assertBad(pidf(tuple_("a", "away")), "bad <basic>")
        self.assertEqual(len(parsePIDF(pidf(tuple_("a", " closed "))).tuples), 1)

    def test_rfc3863_4_1_1_unexpectedElement(self) -> None:
        """
        A PIDF element other than C{<tuple>} or C{<note>} under
        C{<presence>} gets 400.
        """
        self.assertBad(pidf(extra="<status/>"), "unexpected element <status>")


class CompositionTests(SynchronousTestCase):
    """
    L{composePresence}: the state of a resource from all its publications
    (RFC 3903 section 10.3 and 10.4, RFC 6665 section 5.4.11).
    """

    resource = "sip:bob@127.0.0.1"

    def compose(self, *bodies: bytes) -> PresenceState:
        return composePresence(self.resource, [parsePIDF(body) for body in bodies])

    def render(self, *bodies: bytes) -> PIDFDocument:
        """
        Compose, render and parse the result again: it must be valid PIDF.
        """
        return parsePIDF(self.compose(*bodies).toBytes())

    def test_rfc3903_10_3_tuplesMerged(self) -> None:
        """
        The tuples of several publications are all in the composed state.
        """
        state = self.compose(pidf(tuple_("phone")), pidf(tuple_("pc"), tuple_("im")))
        self.assertEqual(state.tupleIds(), ["phone", "pc", "im"])
        self.assertEqual(
            [
                t.get("id")
                for t in self.render(pidf(tuple_("phone")), pidf(tuple_("pc"))).tuples
            ],
            ["phone", "pc"],
        )

    def test_rfc3903_10_4_sameTupleIdNewerWins(self) -> None:
        """
        Where two publications carry a tuple with the same id, the newer
        one's tuple wins, in the place the id first had.
        """
        state = self.compose(
            pidf(tuple_("a", "open"), tuple_("b")), pidf(tuple_("a", "closed"))
        )
        self.assertEqual(state.tupleIds(), ["a", "b"])
        basic = state.tuples[0].find(f"{PIDF}status/{PIDF}basic")
        assert basic is not None
        self.assertEqual(basic.text, "closed")

    def test_rfc3863_4_1_1_entityIsResource(self) -> None:
        """
        The composed document's entity is the resource, whatever the
        publications said.
        """
        self.assertEqual(self.render(SIMPLE).entity, self.resource)

    def test_rfc3863_4_1_6_notes(self) -> None:
        """
        Presentity notes are kept, without exact duplicates.
        """
        document = self.render(
            pidf(extra="<note>Tokyo</note>"),
            pidf(extra='<note>Tokyo</note><note xml:lang="fr">Tokyo</note>'),
            pidf(extra="<note>Back Monday</note>"),
        )
        self.assertEqual(
            [note.text for note in document.notes], ["Tokyo", "Tokyo", "Back Monday"]
        )

    def test_rfc3863_4_2_extensions(self) -> None:
        """
        Top-level extension elements with an id merge like tuples (RFC 4479
        person and device); others are kept without exact duplicates.
        """
        dm = 'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"'
        document = self.render(
            pidf(
                extra='<dm:person id="p1"><dm:note>old</dm:note></dm:person>'
                "<dm:x>same</dm:x>",
                namespaces=dm,
            ),
            pidf(
                extra='<dm:person id="p1"><dm:note>new</dm:note></dm:person>'
                '<dm:device id="d1"/><dm:x>same</dm:x><dm:x>other</dm:x>',
                namespaces=dm,
            ),
        )
        ns = "{urn:ietf:params:xml:ns:pidf:data-model}"
        self.assertEqual(
            [(e.tag, e.get("id")) for e in document.extensions],
            [
                (f"{ns}person", "p1"),
                (f"{ns}x", None),
                (f"{ns}device", "d1"),
                (f"{ns}x", None),
            ],
        )
        self.assertEqual(document.extensions[0][0].text, "new")

    def test_rfc3863_4_2_1_prefixesKept(self) -> None:
        """
        Namespaces keep the prefix their publisher gave them; PIDF is the
        default namespace of the result, and status extensions survive.
        """
        body = self.compose(EXTENDED).toBytes()
        self.assertIn(b'xmlns="urn:ietf:params:xml:ns:pidf"', body)
        self.assertIn(b'xmlns:im="urn:ietf:params:xml:ns:pidf:im"', body)
        self.assertIn(b"<im:im>busy</im:im>", body)
        self.assertIn(b"<myex:location>home</myex:location>", body)
        self.assertIn(b'<tuple id="bs35r9">', body)
        self.assertIn(b'<note xml:lang="en">Don\'t Disturb Please!</note>', body)
        document = parsePIDF(body)
        self.assertEqual(len(document.tuples), 2)

    def test_rfc3863_4_2_1_prefixConflict(self) -> None:
        """
        Two publishers that use one prefix for different namespaces keep
        their namespaces: the second gets a generated prefix.
        """
        one = pidf(
            tuple_("a", extra="<x:e>1</x:e>"), namespaces='xmlns:x="urn:example:one"'
        )
        two = pidf(
            tuple_("b", extra="<x:e>2</x:e>"), namespaces='xmlns:x="urn:example:two"'
        )
        document = self.render(one, two)
        self.assertEqual(
            [t[1].tag for t in document.tuples],
            ["{urn:example:one}e", "{urn:example:two}e"],
        )
        body = self.compose(one, two).toBytes()
        self.assertIn(b'xmlns:x="urn:example:one"', body)
        self.assertIn(b'xmlns:ns1="urn:example:two"', body)

    def test_rfc3863_4_2_3_mustUnderstandAttribute(self) -> None:
        """
        An attribute in the PIDF namespace (RFC 3863 section 4.3.3) keeps
        its namespace, which needs a prefix since attributes are never in
        the default namespace.
        """
        document = self.render(MUST_UNDERSTAND)
        ex1 = document.tuples[0].find(
            "{http://id.mycompany.com/presence/}complexExtension/"
            "{http://id.mycompany.com/presence/}ex1"
        )
        assert ex1 is not None
        self.assertEqual(ex1.get(f"{PIDF}mustUnderstand"), "1")

    def test_unqualifiedExtension(self) -> None:
        """
        An extension element in no namespace stays in no namespace, though
        PIDF is the default namespace of the result.
        """
        body = b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b">' + (
            b'<x xmlns=""><y>1</y></x></presence>'
        )
        document = self.render(body)
        self.assertEqual([e.tag for e in document.extensions], ["x"])
        self.assertEqual(document.extensions[0][0].tag, "y")

    def test_escaping(self) -> None:
        """
        Text and attributes are escaped, the entity included; non-ASCII
        text is written as UTF-8.
        """
        state = composePresence(
            'sip:a&"b"@127.0.0.1',
            [parsePIDF(pidf(extra="<note>&lt;caf\xe9 &amp; co&gt;</note>"))],
        )
        document = parsePIDF(state.toBytes())
        self.assertEqual(document.entity, 'sip:a&"b"@127.0.0.1')
        self.assertEqual(document.notes[0].text, "<café & co>")

    def test_renderedOnce(self) -> None:
        """
        A state renders its document once; every NOTIFY shares the octets.
        """
        state = self.compose(SIMPLE)
        self.assertIs(state.toBytes(), state.toBytes())


class PresencePackageTests(SynchronousTestCase):
    """
    L{PresencePackage}: the IEventPackage of RFC 3856.
    """

    def setUp(self) -> None:
        self.package = PresencePackage()

    def test_interfaces(self) -> None:
        """
        The package provides L{IEventPackage} and L{IPlugin}.
        """
        self.assertTrue(verifyObject(IEventPackage, self.package))
        self.assertTrue(verifyObject(IPlugin, self.package))

    def test_rfc3856_6_packageDefinition(self) -> None:
        """
        Name C{presence} (RFC 3856 section 6.1), no templates, PIDF bodies
        (section 6.5, RFC 3903 section 10.1), default duration 3600 seconds
        (section 6.4), NOTIFYs at most every 5 seconds (section 6.10).
        """
        package = self.package
        self.assertEqual(package.name, "presence")
        self.assertEqual(package.templates, ())
        self.assertEqual(package.contentTypes, (PIDF_TYPE,))
        self.assertEqual(package.publishContentTypes, (PIDF_TYPE,))
        self.assertEqual(package.defaultExpires, 3600)
        self.assertEqual(package.minExpires, 60)
        self.assertEqual(package.maxExpires, 86400)
        self.assertEqual(package.minNotifyInterval, 5.0)

    def test_settings(self) -> None:
        """
        Durations, rate and parser limits can be changed.
        """
        package = PresencePackage(1800, 30, 7200, 1.0, 3, 10)
        self.assertEqual(
            (package.defaultExpires, package.minExpires, package.maxExpires),
            (1800, 30, 7200),
        )
        self.assertEqual(package.minNotifyInterval, 1.0)
        self.assertRaises(
            SIPError, package.parsePublication, PIDF_TYPE, pidf(tuple_("a"))
        )

    def test_rfc3903_6_step5_otherType415(self) -> None:
        """
        A body of another type gets 415 with Accept.
        """
        error = self.assertRaises(
            SIPError, self.package.parsePublication, "application/xml", SIMPLE
        )
        self.assertEqual(error.status, 415)
        self.assertEqual(error.headers, [("Accept", PIDF_TYPE)])

    def test_rfc6665_5_4_7_neutralState(self) -> None:
        """
        Neutral state is a PIDF document with the resource as entity and no
        tuples (see the module docstring).
        """
        body = self.package.renderState(None, PIDF_TYPE, subscription())
        document = parsePIDF(body)
        self.assertEqual(document.entity, "sip:bob@127.0.0.1")
        self.assertEqual((document.tuples, document.notes), ((), ()))
        self.assertEqual(body, neutralDocument("sip:bob@127.0.0.1"))

    def test_rfc3856_6_6_2_pendingNote(self) -> None:
        """
        The neutral state sent to a pending subscription carries a note
        saying so (RFC 3856 section 6.6.2).
        """
        body = self.package.renderState(None, PIDF_TYPE, subscription(state=PENDING))
        document = parsePIDF(body)
        self.assertEqual(document.tuples, ())
        self.assertEqual([n.text for n in document.notes], ["Subscription pending"])

    def test_rfc6665_5_3_1_fullState(self) -> None:
        """
        C{composeState} and C{renderState} give the full composed state.
        """
        package = self.package
        documents = [
            package.parsePublication(PIDF_TYPE, SIMPLE),
            package.parsePublication(PIDF_TYPE, pidf(tuple_("pc", "closed"))),
        ]
        state = package.composeState("sip:bob@127.0.0.1", documents)
        body = package.renderState(state, PIDF_TYPE, subscription())
        self.assertEqual(
            [t.get("id") for t in parsePIDF(body).tuples], ["sg89ae", "pc"]
        )

    def test_wrongObjects(self) -> None:
        """
        Rendering for another type, or objects that are not presence
        states, are programming errors.
        """
        self.assertRaises(
            ValueError, self.package.renderState, None, "text/plain", subscription()
        )
        self.assertRaises(
            TypeError, self.package.renderState, "x", PIDF_TYPE, subscription()
        )
        self.assertRaises(TypeError, self.package.composeState, "sip:a@b", ["x"])
