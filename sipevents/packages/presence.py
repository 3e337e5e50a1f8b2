# -*- test-case-name: tests.test_presence -*-
"""
The C{presence} event package (RFC 3856) with PIDF bodies (RFC 3863).

A presentity's state is composed from every live publication of it (RFC
3903 section 10.3 leaves the policy to us; RFC 6665 section 5.4.11 asks us
to say what it is):

  - C{<tuple>} elements (RFC 3863 section 4.1.2) are merged by their C{id}:
    the tuples of all publications, oldest publication first, and where two
    publications carry the same tuple C{id}, the one from the most recently
    modified publication wins (in the position the id first appeared). RFC
    3903 section 10.4 reads each tuple in the context of its entity-tag;
    two publishers that reuse an id are taken to describe the same thing.
  - Presentity C{<note>}s (section 4.1.6) are all kept, in order, without
    exact duplicates (same text and C{xml:lang}).
  - Extension elements from other namespaces at the top level (section
    4.2, such as RFC 4479 C{<dm:person>} and C{<dm:device>}): those with
    an C{id} attribute are merged by element name and C{id} like tuples;
    the others are all kept, without exact duplicates.
  - The C{<presence entity=...>} of the result is the resource URI
    (L{sipevents.records.canonicalResource}), whatever the publications
    said: we are the presence agent for that resource (RFC 3856 section 3).
  - Namespaces are handled as namespaces, not prefixes (RFC 3863 section
    4.2.1): PIDF elements are written in the default namespace, every other
    namespace keeps the prefix its first publisher gave it when that is
    free, and gets C{ns1}, C{ns2} ... otherwise.

Neutral state (RFC 6665 section 5.4.7, RFC 3856 section 6.6.2), sent when
nothing is published for the resource and to pending subscriptions: a PIDF
document with the resource as C{entity} and B{no tuples}. The schema allows
it (C{minOccurs="0"}, RFC 3863 section 4.4), it claims nothing we do not
know, and a watcher that correlates tuple ids (RFC 3863 section 4.1.2) sees
every tuple it knew as removed when the last publication goes. A closed
tuple would assert a status and invent a tuple id; RFC 3856 section 6.6.2
suggests that only to hide a block, and we never pretend. To pending
subscriptions the document carries a C{<note>} saying so, as section 6.6.2
asks.

Durations and rate (RFC 6665 section 5.4.4 and 5.4.10): subscriptions last
3600 seconds by default (RFC 3856 section 6.4); at least 60, so a refresh
every few seconds cannot be asked for; at most 86400 (a day: presence
changes on the order of seconds to hours, section 6.4, and a longer
subscription only keeps a vanished watcher's state longer). NOTIFYs for one
subscription are at least 5 seconds apart (RFC 3856 section 6.10: "not more
than once every five seconds"); changes in between are coalesced by the
notifier.

PIDF is parsed with the standard library's expat under a strict regime
(L{parseXML}): any document type declaration is refused, so there can be
no entity definitions (no "billion laughs" expansion) and no external
entities or DTDs to fetch; depth and element count are bounded. That is
what C{defusedxml} does with C{forbid_dtd=True}, without the dependency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

from twisted.plugin import IPlugin
from zope.interface import implementer

from sipevents.errors import SIPError
from sipevents.interfaces import IEventPackage
from sipevents.packages.base import SingleTypePackage
from sipevents.records import PENDING

if TYPE_CHECKING:
    from sipevents.records import SubscriptionRecord

__all__ = [
    "PIDF_NAMESPACE",
    "PIDF_TYPE",
    "XML_NAMESPACE",
    "PIDFDocument",
    "PresencePackage",
    "PresenceState",
    "UnsafeXML",
    "composePresence",
    "neutralDocument",
    "parsePIDF",
    "parseXML",
    "parseXMLWithPrefixes",
]

#: The PIDF namespace (RFC 3863 section 4.1.1).
PIDF_NAMESPACE = "urn:ietf:params:xml:ns:pidf"

#: The PIDF media type (RFC 3863 section 3.1), mandatory to support (RFC 3856
#: section 6.5, RFC 3903 section 10.1).
PIDF_TYPE = "application/pidf+xml"

#: The namespace of C{xml:lang} and the other C{xml:} attributes, bound to
#: the C{xml} prefix by definition (Namespaces in XML, section 3).
XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"

_TUPLE = f"{{{PIDF_NAMESPACE}}}tuple"
_NOTE = f"{{{PIDF_NAMESPACE}}}note"
_STATUS = f"{{{PIDF_NAMESPACE}}}status"
_BASIC = f"{{{PIDF_NAMESPACE}}}basic"
_PRESENCE = f"{{{PIDF_NAMESPACE}}}presence"
_LANG = f"{{{XML_NAMESPACE}}}lang"

_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


class UnsafeXML(ValueError):
    """
    The document uses a feature we refuse to process: a document type
    declaration (and with it entity definitions, the vehicle of entity
    expansion bombs and external entities), or more depth or elements than
    allowed.
    """


def _refuse(what: str) -> UnsafeXML:
    return UnsafeXML(f"{what} not allowed")


def parseXML(data: bytes, maxDepth: int = 64, maxElements: int = 10000) -> Element:
    """
    Parse untrusted XML safely into an L{Element} tree with namespaces
    resolved (tags are C{"{uri}local"}, as in L{xml.etree.ElementTree}).

    Refused: any C{<!DOCTYPE>} (so no internal subset, no entity
    declarations, no external DTD or entity), documents nested deeper than
    C{maxDepth} or with more than C{maxElements} elements. References to
    undefined entities are errors, as XML requires without a DTD.

    @param data: the document octets; the encoding comes from its XML
        declaration (UTF-8 by default, RFC 3863 section 4.1).
    @return: the root element. The prefixes the document used are not kept;
        L{parseXMLWithPrefixes} gives them too.
    @raise UnsafeXML: for a refused feature.
    @raise ValueError: for a document that is not well-formed.
    """
    return parseXMLWithPrefixes(data, maxDepth, maxElements)[0]


def _expandName(name: str) -> str:
    """
    expat's C{"uri}local"} (namespace separator C{"}"}) as ElementTree's
    C{"{uri}local"}.
    """
    return "{" + name if "}" in name else name


def parseXMLWithPrefixes(
    data: bytes, maxDepth: int = 64, maxElements: int = 10000
) -> tuple[Element, dict[str, str]]:
    """
    L{parseXML}, also returning the namespace prefixes the document
    declared: a C{dict} from namespace URI to the first prefix declared for
    it (C{""} when it was only ever the default namespace).
    """
    builder = TreeBuilder()
    parser = expat.ParserCreate(None, "}")
    prefixes: dict[str, str] = {}
    depth = 0
    count = 0

    def startElement(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth, count
        depth += 1
        count += 1
        if depth > maxDepth:
            raise UnsafeXML(f"Nesting deeper than {maxDepth} elements not allowed")
        if count > maxElements:
            raise UnsafeXML(f"More than {maxElements} elements not allowed")
        builder.start(
            _expandName(name),
            {_expandName(key): value for key, value in attributes.items()},
        )

    def endElement(name: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(_expandName(name))

    def startNamespace(prefix: str | None, uri: str) -> None:
        # A prefix is worth more than a default declaration: it is what a
        # composed document can reuse.
        if not prefixes.get(uri):
            prefixes[uri] = prefix or ""

    def refuseDoctype(*args: object) -> None:
        raise _refuse("Document type declaration")

    def refuseEntity(*args: object) -> None:
        raise _refuse("Entity declaration")

    def refuseExternal(*args: object) -> int:
        raise _refuse("External entity")

    # The DOCTYPE is refused before its internal subset is read, so no
    # entity is ever declared; the other handlers are a second lock.
    parser.StartDoctypeDeclHandler = refuseDoctype
    parser.EntityDeclHandler = refuseEntity
    parser.UnparsedEntityDeclHandler = refuseEntity
    parser.ExternalEntityRefHandler = refuseExternal
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = startElement
    parser.EndElementHandler = endElement
    parser.StartNamespaceDeclHandler = startNamespace
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except expat.ExpatError as error:
        raise ValueError(
            f"{expat.ErrorString(error.code)} at line {error.lineno}, "
            f"column {error.offset}"
        ) from None
    return builder.close(), prefixes


def _badPIDF(reason: str) -> SIPError:
    return SIPError(f"Bad PIDF Document: {reason}", 400)


@dataclass(frozen=True, slots=True)
class PIDFDocument:
    """
    A parsed, checked PIDF document (RFC 3863 section 4.1): one
    publication's contribution to a presentity's state.

    @ivar entity: the C{entity} attribute of C{<presence>}.
    @ivar tuples: the C{<tuple>} elements, in order; their C{id}s are
        present and unique.
    @ivar notes: the presentity C{<note>} elements.
    @ivar extensions: the top-level elements from other namespaces.
    @ivar prefixes: the namespace prefixes the document declared, as
        C{(uri, prefix)} pairs.
    """

    entity: str
    tuples: tuple[Element, ...]
    notes: tuple[Element, ...]
    extensions: tuple[Element, ...]
    prefixes: tuple[tuple[str, str], ...]


def parsePIDF(
    body: bytes, maxDepth: int = 64, maxElements: int = 10000
) -> PIDFDocument:
    """
    Parse and check a PIDF document (RFC 3863 section 4).

    Checked: well-formed XML without a DTD (see L{parseXML}); the root is
    C{<presence>} in the PIDF namespace with an C{entity} (section 4.1.1);
    its PIDF children are C{<tuple>}s and C{<note>}s only; every tuple has
    an C{id}, unique in the document (section 4.1.2), and a C{<status>}
    (section 4.1.2) whose C{<basic>}, when present, is C{open} or C{closed}
    (section 4.1.4). Elements from other namespaces are kept unexamined
    (section 4.2.3).

    @raise SIPError: 400 saying what is wrong.
    """
    try:
        root, declared = parseXMLWithPrefixes(body, maxDepth, maxElements)
    except UnsafeXML as error:
        raise _badPIDF(str(error)) from None
    except ValueError as error:
        raise _badPIDF(f"not well-formed XML ({error})") from None
    if root.tag != _PRESENCE:
        raise _badPIDF("the root element is not a PIDF <presence>")
    entity = root.get("entity")
    if not entity:
        raise _badPIDF("<presence> has no entity")
    tuples: list[Element] = []
    notes: list[Element] = []
    extensions: list[Element] = []
    ids: set[str] = set()
    for child in root:
        tag = child.tag
        if tag == _TUPLE:
            tupleId = child.get("id")
            if not tupleId:
                raise _badPIDF("a <tuple> has no id")
            if tupleId in ids:
                raise _badPIDF(f"two tuples have the id {tupleId!r}")
            ids.add(tupleId)
            status = child.find(_STATUS)
            if status is None:
                raise _badPIDF(f"tuple {tupleId!r} has no <status>")
            basic = status.find(_BASIC)
            if basic is not None and (basic.text or "").strip() not in (
                "open",
                "closed",
            ):
                raise _badPIDF(f"tuple {tupleId!r} has a bad <basic>")
            tuples.append(child)
        elif tag == _NOTE:
            notes.append(child)
        elif tag.startswith(f"{{{PIDF_NAMESPACE}}}"):
            raise _badPIDF(f"unexpected element <{tag.partition('}')[2]}>")
        else:
            extensions.append(child)
    return PIDFDocument(
        entity, tuple(tuples), tuple(notes), tuple(extensions), tuple(declared.items())
    )


def _structure(element: Element) -> tuple[object, ...]:
    """
    A hashable value equal for elements with the same name, attributes,
    text and children (surrounding whitespace ignored): to drop exact
    duplicates.
    """
    return (
        element.tag,
        tuple(sorted(element.attrib.items())),
        (element.text or "").strip(),
        tuple(_structure(child) for child in element),
        (element.tail or "").strip(),
    )


def _namespaceOf(name: str) -> str:
    """
    The namespace URI of a C{"{uri}local"} name, C{""} for none.
    """
    if name[:1] == "{":
        return name[1:].partition("}")[0]
    return ""


def _usedNamespaces(
    elements: Sequence[Element],
) -> tuple[list[str], set[str]]:
    """
    The namespaces of the names in C{elements} and below: those of element
    names in order of first use, and the set used by attribute names.
    """
    elementSpaces: dict[str, None] = {}
    attributeSpaces: set[str] = set()
    for top in elements:
        for element in top.iter():
            elementSpaces[_namespaceOf(element.tag)] = None
            for name in element.attrib:
                if name[:1] == "{":
                    attributeSpaces.add(_namespaceOf(name))
    return list(elementSpaces), attributeSpaces


def _assignPrefixes(
    documents: Sequence[PIDFDocument], elements: Sequence[Element]
) -> dict[str, str]:
    """
    A prefix for every namespace used in C{elements} but PIDF element names
    (written in the default namespace) and C{xml:}: the first prefix a
    publisher declared for it when that is free, a generated one otherwise.
    """
    preferred: dict[str, str] = {}
    for document in documents:
        for uri, prefix in document.prefixes:
            if prefix:
                preferred.setdefault(uri, prefix)
    elementSpaces, attributeSpaces = _usedNamespaces(elements)
    # Attributes are never in the default namespace, so a PIDF attribute
    # (RFC 3863 section 4.3.3: impp:mustUnderstand) needs a prefix too.
    needed = [*elementSpaces, *sorted(attributeSpaces)]
    assigned: dict[str, str] = {}
    taken: set[str] = set()
    counter = 0
    for uri in needed:
        if uri in assigned or uri in ("", XML_NAMESPACE):
            continue
        if uri == PIDF_NAMESPACE and uri not in attributeSpaces:
            continue
        prefix = preferred.get(uri, "pidf" if uri == PIDF_NAMESPACE else "")
        if not prefix or prefix in taken or prefix.lower().startswith("xml"):
            while True:
                counter += 1
                prefix = f"ns{counter}"
                if prefix not in taken:
                    break
        assigned[uri] = prefix
        taken.add(prefix)
    return assigned


def _attributeName(name: str, prefixes: dict[str, str]) -> str:
    if name[:1] != "{":
        return name
    uri, _, local = name[1:].partition("}")
    if uri == XML_NAMESPACE:
        return f"xml:{local}"
    return f"{prefixes[uri]}:{local}"


def _write(
    element: Element, prefixes: dict[str, str], default: str, out: list[str]
) -> None:
    """
    Serialize C{element} into C{out}, with C{default} the default
    namespace in scope (C{""} for none).
    """
    tag = element.tag
    declaration = ""
    if tag[:1] == "{":
        uri, _, local = tag[1:].partition("}")
        if uri == PIDF_NAMESPACE:
            name = local
            if default != PIDF_NAMESPACE:
                declaration = f' xmlns="{PIDF_NAMESPACE}"'
                default = PIDF_NAMESPACE
        elif uri == XML_NAMESPACE:
            name = f"xml:{local}"
        else:
            name = f"{prefixes[uri]}:{local}"
    else:
        # No namespace: undeclare the PIDF default around it.
        name = tag
        if default:
            declaration = ' xmlns=""'
            default = ""
    out.append(f"<{name}{declaration}")
    for key, value in element.attrib.items():
        out.append(f" {_attributeName(key, prefixes)}={quoteattr(value)}")
    if element.text or len(element):
        out.append(">")
        if element.text:
            out.append(escape(element.text))
        for child in element:
            _write(child, prefixes, default, out)
            if child.tail:
                out.append(escape(child.tail))
        out.append(f"</{name}>")
    else:
        out.append("/>")


class PresenceState:
    """
    A presentity's composed state: what the PIDF document sent to every
    watcher is made of. Immutable once built; the document is rendered once
    and shared by every NOTIFY that carries it.

    @ivar resource: the resource, written as the C{entity}.
    @ivar tuples: the merged tuples.
    @ivar notes: the presentity notes.
    @ivar extensions: the top-level extension elements.
    @ivar prefixes: the prefix of every non-PIDF namespace used.
    """

    __slots__ = ("resource", "tuples", "notes", "extensions", "prefixes", "_body")

    def __init__(
        self,
        resource: str,
        tuples: Sequence[Element],
        notes: Sequence[Element],
        extensions: Sequence[Element],
        prefixes: dict[str, str],
    ) -> None:
        self.resource = resource
        self.tuples = tuple(tuples)
        self.notes = tuple(notes)
        self.extensions = tuple(extensions)
        self.prefixes = prefixes
        self._body: bytes | None = None

    def __repr__(self) -> str:
        ids = ", ".join(self.tupleIds())
        return f"<PresenceState {self.resource} tuples=[{ids}]>"

    def tupleIds(self) -> list[str]:
        """
        The ids of the tuples, in document order.
        """
        return [element.get("id", "") for element in self.tuples]

    def toBytes(self) -> bytes:
        """
        The PIDF document (RFC 3863 section 4), UTF-8 encoded.
        """
        body = self._body
        if body is None:
            body = self._body = self._render()
        return body

    def _render(self) -> bytes:
        prefixes = self.prefixes
        out = [_DECLARATION, f'<presence xmlns="{PIDF_NAMESPACE}"']
        for uri, prefix in prefixes.items():
            out.append(f" xmlns:{prefix}={quoteattr(uri)}")
        out.append(f" entity={quoteattr(self.resource)}>\n")
        # RFC 3863 section 4.1.1: tuples, then notes, then extensions.
        for element in (*self.tuples, *self.notes, *self.extensions):
            _write(element, prefixes, PIDF_NAMESPACE, out)
            out.append("\n")
        out.append("</presence>\n")
        return "".join(out).encode("utf-8")


def neutralDocument(resource: str, pending: bool = False) -> bytes:
    """
    The neutral presence document of C{resource} (see the module
    docstring): no tuples; with a note when the subscription is pending
    (RFC 3856 section 6.6.2).
    """
    entity = quoteattr(resource)
    if pending:
        return (
            f'{_DECLARATION}<presence xmlns="{PIDF_NAMESPACE}" entity={entity}>\n'
            '<note xml:lang="en">Subscription pending</note>\n'
            "</presence>\n"
        ).encode()
    return (
        f'{_DECLARATION}<presence xmlns="{PIDF_NAMESPACE}" entity={entity}/>\n'
    ).encode()


def composePresence(resource: str, documents: Sequence[PIDFDocument]) -> PresenceState:
    """
    Compose the state of C{resource} from its publications, oldest (least
    recently modified) first, by the rules in the module docstring.
    """
    tuples: dict[str, Element] = {}
    notes: dict[tuple[str, str], Element] = {}
    keyed: dict[tuple[str, str], Element] = {}
    extensions: list[tuple[str, str] | Element] = []
    seen: set[tuple[object, ...]] = set()
    for document in documents:
        for element in document.tuples:
            tuples[element.get("id", "")] = element
        for element in document.notes:
            noteKey = (element.get(_LANG, ""), (element.text or "").strip())
            notes.setdefault(noteKey, element)
        for element in document.extensions:
            elementId = element.get("id")
            if elementId is not None:
                key = (element.tag, elementId)
                if key not in keyed:
                    extensions.append(key)
                keyed[key] = element
            else:
                structure = _structure(element)
                if structure not in seen:
                    seen.add(structure)
                    extensions.append(element)
    merged = [keyed[item] if isinstance(item, tuple) else item for item in extensions]
    tupleList = list(tuples.values())
    noteList = list(notes.values())
    prefixes = _assignPrefixes(documents, [*tupleList, *noteList, *merged])
    return PresenceState(resource, tupleList, noteList, merged, prefixes)


@implementer(IPlugin, IEventPackage)
class PresencePackage(SingleTypePackage):
    """
    The C{presence} event package (RFC 3856): PIDF bodies in NOTIFY and
    PUBLISH, state composed from all publications; see the module
    docstring for the composition rules, neutral state, durations and rate.

    Provides L{twisted.plugin.IPlugin} so that an instance at module level
    in a C{twisted/plugins} dropin is found by
    L{sipevents.packages.discoverPackages}.

    @ivar maxDepth: the deepest element nesting accepted in a PUBLISH body.
    @ivar maxElements: the most elements accepted in a PUBLISH body.
    """

    name = "presence"
    contentType = PIDF_TYPE
    contentTypes = (PIDF_TYPE,)
    publishContentTypes = (PIDF_TYPE,)

    def __init__(
        self,
        defaultExpires: int = 3600,
        minExpires: int = 60,
        maxExpires: int = 86400,
        minNotifyInterval: float = 5.0,
        maxDepth: int = 64,
        maxElements: int = 10000,
    ) -> None:
        """
        @param defaultExpires: RFC 3856 section 6.4.
        @param minNotifyInterval: RFC 3856 section 6.10.
        """
        super().__init__(defaultExpires, minExpires, maxExpires, minNotifyInterval)
        self.maxDepth = maxDepth
        self.maxElements = maxElements

    def parsePublication(self, contentType: str, body: bytes) -> PIDFDocument:
        """
        Parse and check a published PIDF document (L{parsePIDF}).

        @raise SIPError: 400 for a bad document, 415 for another type.
        """
        self._checkPublished(contentType)
        return parsePIDF(body, self.maxDepth, self.maxElements)

    def composeState(self, resource: str, documents: Sequence[object]) -> PresenceState:
        """
        Merge the publications' documents (L{composePresence}).
        """
        pidfs: list[PIDFDocument] = []
        for document in documents:
            if not isinstance(document, PIDFDocument):
                raise TypeError(f"Not a PIDF document: {document!r}")
            pidfs.append(document)
        return composePresence(resource, pidfs)

    def renderState(
        self, state: object | None, contentType: str, subscription: SubscriptionRecord
    ) -> bytes:
        """
        The PIDF document of C{state}, or the neutral document (with a
        pending note for a pending subscription) when C{state} is C{None}.
        """
        self._checkRendered(contentType)
        if state is None:
            return neutralDocument(subscription.resource, subscription.state == PENDING)
        if not isinstance(state, PresenceState):
            raise TypeError(f"Not a presence state: {state!r}")
        return state.toBytes()
