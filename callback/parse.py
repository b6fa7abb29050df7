"""Callback XML: the outer envelope and the decrypted event, parsed with entity expansion off."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

MAX_BODY = 64 * 1024  # bytes; WeCom's event envelopes are a few KB


class NotAnEvent(ValueError):
    """A body that is not WeCom's XML: garbage, a DTD or entities, missing fields."""


def parse_xml(text: str | bytes) -> ET.Element:
    """The root element; DTDs (and with them every entity trick) are refused outright."""
    try:
        return fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise NotAnEvent(f"refused XML: {type(error).__name__}") from None
    except ET.ParseError as error:
        raise NotAnEvent(f"not XML: {error}") from None


def envelope_encrypt(body: bytes) -> str:
    """The `Encrypt` field of a posted envelope."""
    if len(body) > MAX_BODY:
        raise NotAnEvent(f"body over {MAX_BODY} bytes")
    found = parse_xml(body).findtext("Encrypt")
    if not found or not found.strip():
        raise NotAnEvent("the envelope has no Encrypt field")
    return found.strip()


def _value(element: ET.Element) -> Any:
    """Text for a leaf; for a list such as MemChangeList, its items' values."""
    children = list(element)
    if not children:
        return (element.text or "").strip()
    return [_value(child) for child in children]


@dataclass(frozen=True)
class CallbackEvent:
    """A decrypted event: its fields by XML name (lists for nested items) and its delivery key."""

    fields: dict[str, Any]
    xml: str

    @classmethod
    def parse(cls, xml: str) -> CallbackEvent:
        root = parse_xml(xml)
        fields = {child.tag: _value(child) for child in root}
        if not fields.get("Event"):
            raise NotAnEvent("the decrypted message has no Event field")
        return cls(fields, xml)

    def get(self, name: str) -> str:
        value = self.fields.get(name)
        return value if isinstance(value, str) else ""

    def items(self, name: str) -> list[str]:
        value = self.fields.get(name)
        return [v for v in value if isinstance(v, str) and v] if isinstance(value, list) else []

    @property
    def event(self) -> str:
        return self.get("Event")

    @property
    def change_type(self) -> str | None:
        return self.get("ChangeType") or None

    @property
    def delivery_key(self) -> str:
        """SHA-256 of every field: a retry of the event carries the same plaintext, so the same
        key; two distinct events differ in at least CreateTime, a user, a chat or a code."""
        canonical = json.dumps(self.fields, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
