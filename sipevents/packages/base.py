"""
What the built-in event packages share: one body type for NOTIFY and
PUBLISH alike, no template packages, and the durations and notification
rate of L{sipevents.interfaces.IEventPackage} set per instance, so that an
operator can override them.
"""

from __future__ import annotations

from typing import ClassVar

from sipevents.errors import UnsupportedMediaType

__all__ = ["SingleTypePackage"]


class SingleTypePackage:
    """
    The base of an event package whose bodies are all of one type.

    A subclass sets C{name}, C{contentType}, C{contentTypes} and
    C{publishContentTypes} (both C{(contentType,)}), and implements
    C{parsePublication}, C{composeState} and C{renderState} of
    L{sipevents.interfaces.IEventPackage}, checking the type with
    L{_checkPublished} and L{_checkRendered}.

    @ivar defaultExpires: the duration granted to a SUBSCRIBE without
        C{Expires}.
    @ivar minExpires: the shortest subscription accepted.
    @ivar maxExpires: the longest subscription granted.
    @ivar minNotifyInterval: the least seconds between two NOTIFYs of one
        subscription.
    """

    name: ClassVar[str]
    contentType: ClassVar[str]
    templates: tuple[str, ...] = ()

    def __init__(
        self,
        defaultExpires: int = 3600,
        minExpires: int = 60,
        maxExpires: int = 86400,
        minNotifyInterval: float = 1.0,
    ) -> None:
        self.defaultExpires = defaultExpires
        self.minExpires = minExpires
        self.maxExpires = maxExpires
        self.minNotifyInterval = minNotifyInterval

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def _checkPublished(self, contentType: str) -> None:
        """
        Refuse a published body of another type.

        @raise UnsupportedMediaType: 415, with an C{Accept} of our type.
        """
        if contentType != self.contentType:
            raise UnsupportedMediaType(headers=[("Accept", self.contentType)])

    def _checkRendered(self, contentType: str) -> None:
        """
        Refuse to render another type: the notifier only asks for ours.

        @raise ValueError: for another type.
        """
        if contentType != self.contentType:
            raise ValueError(f"{self.name} cannot render {contentType}")
