"""All of docclean's settings, in one typed place.

Defaults work as they are; a TOML file (``docclean run --config docclean.toml``) overrides any of them,
section by section (``[language]`` ``keep = ["en", "fr"]``). The effective configuration of a run is
written into the ``runs`` table and into every Parquet file's metadata.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ReadConfig(_Section):
    max_file_bytes: int = Field(
        16 * 1024 * 1024,  # a 50 MB "article" is a dump, not a document: reject it early and say so
        description="A one-document file (txt, html, and their .gz once decompressed) larger than this is "
        "rejected as too_large. Containers (jsonl, warc) are streamed and not limited as a whole.",
    )
    max_record_bytes: int = Field(16 * 1024 * 1024, description="Larger records inside a container are rejected.")
    max_decompressed_bytes: int = Field(
        256 * 1024 * 1024,
        description="Guard against gzip bombs: a .gz document never inflates past min(this, max_file_bytes); "
        "an over-long WARC payload is hashed over at most this many bytes.",
    )
    max_reject_raw_bytes: int = Field(
        1024 * 1024,
        description="A reject keeps at most this many leading raw bytes (its SHA-256 covers all of them).",
    )
    follow_symlinks: bool = Field(
        False,
        description="Read links whose target is a file inside the input root. Links out of the root are "
        "never followed (rejected as symlink_outside_root).",
    )
    binary_control_ratio: float = Field(0.10, description="Share of control bytes above which text is binary.")


class NormalizeConfig(_Section):
    uncurl_quotes: bool = Field(False, description="Keep typographic quotes (ftfy would straighten them).")


class ExtractConfig(_Section):
    extractor: Literal["trafilatura", "docclean"] = "docclean"
    preclean_dom: bool = Field(True, description="Drop ad, paywall, share and newsletter containers first.")
    min_text_chars: int = Field(1, description="Below this the page has no main content: rejected.")
    fallback_below_chars: int = Field(
        250, description="When the fast extractor finds less main text than this, trafilatura tries too."
    )
    record_left_out: bool = Field(
        True, description="Record every visible block the extractor left out as a not_main_content removal."
    )
    date_search: bool = Field(
        False,
        description="When the page declares no date, let htmldate look in its URL and markup: finds about "
        "a quarter more dates but costs about a quarter of the stage's time.",
    )


class BoilerplateConfig(_Section):
    enabled: bool = True
    disabled_rules: list[str] = Field(default_factory=list, description="Rule names to switch off.")
    header_metadata: bool = Field(True, description="Plain text: parse title/date/dateline/publisher lines at the top.")
    classifier: bool = Field(True, description="Plain text: judge each line in context with the trained line model.")
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="Body score below which the classifier drops a line.")
    prose_threshold: float = Field(0.5, ge=0.0, le=1.0, description="The same for a paragraph of prose (12+ words ending a sentence).")
    min_related_run: int = Field(3, ge=1, description="Short lines after the last prose paragraph that make a related-links block.")
    classifier_min_lines: int = Field(8, ge=1, description="Fewer candidate lines than this: too little context to judge, keep them.")
    join_fragments: bool = Field(True, description="Plain text: rejoin the pieces of a sentence a scraper split at links.")


class RepairConfig(_Section):
    mode: Literal["off", "flag", "fix"] = Field("fix", description="flag records repairs without applying them.")
    min_confidence: float = Field(0.9, ge=0.0, le=1.0, description="Repairs below this confidence are not made.")
    whole_words: bool = Field(True, description="Also repair swapped whole words ('build sense'), only in "
                              "documents that show in-word spinner damage.")


class LanguageConfig(_Section):
    keep: list[str] = Field(default_factory=list, description="ISO 639-1 codes to keep; empty keeps all.")
    prefix_chars: int = Field(1000, description="Detect on this many leading characters of the cleaned text.")
    seed: int = Field(0, description="langdetect is random; a fixed seed makes it deterministic.")
    min_chars: int = Field(20, description="Shorter texts get language 'und' (undetermined).")


class DedupConfig(_Section):
    enabled: bool = True
    num_perm: int = Field(128, description="MinHash permutations over the whole text.")
    lsh_rows: int = Field(3, ge=1, description="Rows per LSH band: few rows find low-overlap copies (paywall cuts, spun copies).")
    head_words: int = Field(100, ge=0, description="A second signature over the opening words finds short truncated copies; 0 disables.")
    head_num_perm: int = Field(63, description="MinHash permutations of the opening signature.")
    shingle_words: int = Field(3, ge=1, description="Word n-gram size of the shingles (MinHash and verification).")
    min_line_words: int = Field(6, ge=1, description="Shorter lines (menus, headings, leftover chrome) are left out of the comparison; 1 keeps all.")
    seed: int = Field(1, description="MinHash seed; changing it invalidates the persisted signature index.")
    jaccard_threshold: float = Field(0.4, ge=0.0, le=1.0, description="Verified shingle Jaccard at or above which two texts are one story.")
    containment_threshold: float = Field(0.5, ge=0.0, le=1.0, description="Share of the shorter text's shingles found in the longer one.")
    member_jaccard_threshold: float = Field(0.3, ge=0.0, le=1.0, description="Weaker direct evidence each member of a cluster needs with the kept copy (two copies edited apart).")
    member_containment_threshold: float = Field(0.4, ge=0.0, le=1.0, description="Containment a cluster member needs with the kept copy.")
    min_containment_words: int = Field(40, description="Shorter texts are matched by Jaccard only: containment of a few words proves nothing.")
    max_containment_offset: float = Field(0.35, ge=0.0, le=1.0, description="Shared text must start in the opening of the longer text (a copy, not the second story of a digest).")
    max_bucket: int = Field(50, description="An LSH bucket bigger than this is verified as a chain, not all pairs.")


class ChromeConfig(_Section):
    enabled: bool = True
    min_documents: int = Field(3, description="A line seen in at least this many different stories of a site is chrome (copies of one story count once).")
    max_line_words: int = Field(250, description="Longer lines and paragraphs are never counted as chrome (consent and copyright notices run to 100+ words).")
    quoted_min_documents: int = Field(6, description="A line holding a quotation (4+ words in quotes) needs this many stories: articles quote the same people.")
    story_min_words: int = Field(8, description="Lines at least this long identify a story, so copies of one story count once.")
    max_story_copies: int = Field(50, ge=2, description="A long line in more documents than this links them as a chain, not all pairs.")


class RunConfig(_Section):
    batch_size: int = Field(200, ge=1, description="Documents per Prefect task; hundreds, never one.")
    retries: int = Field(2, ge=0, description="Retries of a batch task on I/O errors.")
    doc_timeout_seconds: float = Field(30.0, description="A document that takes longer is rejected as timeout.")
    workers: int = Field(1, ge=1, description="Processes for batch work on one machine.")


class ArchiveConfig(_Section):
    compression: str = "zstd"
    compression_level: int = 3
    row_group_size: int = 2000
    cache_dir: str | None = Field(
        None, description="s3:// archives: where the local mirror lives (default: $DOCCLEAN_CACHE_DIR/s3, else "
        "~/.cache/docclean/s3); <cache>/<bucket>/<prefix>. With --cluster it must be on storage the workers share.")
    remote_lock_ttl_seconds: float = Field(
        300.0, gt=0, description="s3:// archives: the writer's lock object expires this long after its last "
        "refresh (refreshed every quarter of it), so a killed writer blocks others at most this long.")
    remote_lock_timeout_seconds: float = Field(3600.0, ge=0, description="How long a run waits for another writer's s3 lock.")


class Config(_Section):
    read: ReadConfig = Field(default_factory=ReadConfig)
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    extract: ExtractConfig = Field(default_factory=ExtractConfig)
    boilerplate: BoilerplateConfig = Field(default_factory=BoilerplateConfig)
    repair: RepairConfig = Field(default_factory=RepairConfig)
    language: LanguageConfig = Field(default_factory=LanguageConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    chrome: ChromeConfig = Field(default_factory=ChromeConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    archive: ArchiveConfig = Field(default_factory=ArchiveConfig)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)


def cache_dir() -> Path:
    """docclean's folder for what it may rebuild at will (the s3 mirror, the language profile table):
    $DOCCLEAN_CACHE_DIR, else $XDG_CACHE_HOME/docclean, else ~/.cache/docclean."""
    if os.environ.get("DOCCLEAN_CACHE_DIR"):
        return Path(os.environ["DOCCLEAN_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "docclean"


def load_config(path: str | Path | None = None, **overrides) -> Config:
    """Defaults, then the TOML file at ``path`` if given, then ``overrides`` (section -> dict)."""
    data: dict = {}
    if path is not None:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    return Config.model_validate(data)
