"""The `Document` every stage takes and returns, and the edit records that make up its audit trail.

A stage is a pure function ``stage(doc, config) -> (doc, edits)``: it never mutates its input, and every
removal or repair it makes is returned as an edit carrying the name of the rule that made it. The new
document already has those edits appended to its ``removed`` / ``repairs`` / ``fixes`` fields, so the
document alone is its own provenance; the returned list lets the pipeline count what each stage did.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Union

ContentType = Literal["text", "html"]


@dataclass(frozen=True, slots=True)
class Removal:
    """A piece of text a rule took out. ``text`` is exactly what was removed (one line or block)."""

    rule: str
    text: str
    stage: str = ""


@dataclass(frozen=True, slots=True)
class Repair:
    """A span of damaged text replaced by what the rule believes was there. ``offset`` is the character
    offset of ``original`` in the text as it stood before the repair stage ran."""

    rule: str
    original: str
    replacement: str
    offset: int
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class Fix:
    """A normalization applied to the text as a whole (e.g. ftfy's ``fix_encoding``), with a count or a
    short detail of what changed."""

    rule: str
    detail: str = ""
    stage: str = ""


Edit = Union[Removal, Repair, Fix]


@dataclass(frozen=True, slots=True)
class Document:
    doc_id: str
    source_path: str  # relative to the input root; ``path#N`` for record N of a container (jsonl, warc)
    source_sha256: str  # of the raw bytes of this document (the record, for containers)
    raw: bytes = b""
    content_type: ContentType = "text"
    source_mtime: datetime | None = None
    encoding: str | None = None  # detected encoding of the raw bytes; None when they were valid UTF-8
    html: str | None = None  # decoded HTML, until the extract stage turns it into text
    text: str = ""
    url: str | None = None
    title: str | None = None
    published: datetime | None = None
    author: str | None = None
    publisher: str | None = None
    dateline: str | None = None
    language: str | None = None
    language_score: float | None = None
    truncated: bool = False
    removed: tuple[Removal, ...] = ()
    repairs: tuple[Repair, ...] = ()
    fixes: tuple[Fix, ...] = ()
    duplicate_of: str | None = None
    reject_reason: str | None = None  # set by a stage that cannot clean the document; see `reject()`
    reject_detail: str | None = None

    def replace(self, **changes) -> "Document":
        return dataclasses.replace(self, **changes)

    def with_edits(self, edits: list[Edit], **changes) -> "Document":
        """A copy with ``edits`` appended to the matching audit fields (and any other field changes)."""
        removed, repairs, fixes = [], [], []
        for e in edits:  # one pass: boilerplate returns hundreds of edits per page
            (removed if type(e) is Removal else repairs if type(e) is Repair else fixes).append(e)
        if removed:
            changes["removed"] = self.removed + tuple(removed)
        if repairs:
            changes["repairs"] = self.repairs + tuple(repairs)
        if fixes:
            changes["fixes"] = self.fixes + tuple(fixes)
        return dataclasses.replace(self, **changes)

    def reject(self, reason: str, detail: str = "") -> "Document":
        """Mark the document as one that goes to the rejects table. ``reason`` is a short stable code
        (``binary_content``, ``empty_after_cleaning``, ``language_filtered``...), ``detail`` says more."""
        return dataclasses.replace(self, reject_reason=reason, reject_detail=detail or None)

    @property
    def rejected(self) -> bool:
        return self.reject_reason is not None


StageResult = tuple[Document, list[Edit]]


@dataclass(slots=True)
class StageStats:
    """What one stage did over a stream of documents (datatrove-style counters)."""

    documents: int = 0
    rejected: int = 0
    seconds: float = 0.0
    by_rule: dict[str, int] = field(default_factory=dict)

    def count(self, edits: list[Edit]) -> None:
        for e in edits:
            self.by_rule[e.rule] = self.by_rule.get(e.rule, 0) + 1

    def merge(self, other: "StageStats") -> None:
        self.documents += other.documents
        self.rejected += other.rejected
        self.seconds += other.seconds
        for k, v in other.by_rule.items():
            self.by_rule[k] = self.by_rule.get(k, 0) + v
