"""A static HTML report per run, ``CLEAN/reports/<run_id>.html``: one self-contained file (inline SVG
charts, inline CSS, no script, no network), readable years later from the archive folder alone.

It shows what a run did: documents in / kept / duplicate / rejected, removals per rule, repairs per pair,
languages, text length before and after cleaning, the truncated share, and the ten most removed lines.
Per-document lengths come from the run's rows in the archive; everything else from the `RunReport`.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable

from .archive import Archive, write_bytes_atomic

REPORTS_DIR = "reports"

# One colour per series, readable on white and for the common colour-blindnesses (Okabe-Ito).
KEPT, DUPLICATE, REJECTED, SKIPPED, INPUT = "#0072B2", "#E69F00", "#D55E00", "#999999", "#56B4E9"
BEFORE, AFTER, TRUNCATED, COMPLETE = "#CC79A7", "#009E73", "#D55E00", "#0072B2"
BAR = "#0072B2"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    color: str = BAR


def report_path(archive_root: str | Path, run_id: str) -> Path:
    return Path(archive_root) / REPORTS_DIR / f"{run_id}.html"


def write_run_report(archive_root: str | Path, report) -> Path:
    """Render the report of ``report`` (a `pipeline.RunReport`) into ``CLEAN/reports/<run_id>.html``,
    atomically, and return its path."""
    lengths, removals = _rows_of_run(Archive(archive_root), report.run_id)
    path = report_path(archive_root, report.run_id)
    write_bytes_atomic(render_run_report(report, lengths, removals).encode("utf-8"), path)
    return path


def try_write_run_report(archive_root: str | Path, report, log: Callable[[str], None] = lambda m: None) -> Path | None:
    """`write_run_report` for the end of a run: the archive is already committed, so a failure to draw
    the report is logged, never raised."""
    try:
        path = write_run_report(archive_root, report)
    except Exception as exc:  # a report is a convenience; the run it describes has succeeded
        log(f"could not write the run report: {type(exc).__name__}: {exc}")
        return None
    log(f"run report: {path}")
    return path


def _rows_of_run(archive: Archive, run_id: str) -> tuple[list[tuple[int, int]], dict[str, int]]:
    """From the documents this run kept or marked duplicate: (characters before cleaning, after) each,
    and the removed lines per rule. "Before" is the cleaned text plus every removed line, i.e. the text
    as read, before any rule took something out (for HTML, the visible text: markup is not counted).

    Read batch by batch and summed with pyarrow: the removed lines of a big run never sit in memory
    as Python objects all at once."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    lengths: list[tuple[int, int]] = []
    removals: Counter = Counter()
    for name in ("documents", "duplicates"):
        files = archive.files(name)
        # a run writes part-<run>-<n>.parquet; after a compaction its rows live in other files
        files = [p for p in files if run_id in p.name] or files
        for path in files:
            for batch in pq.ParquetFile(path).iter_batches(columns=["run_id", "chars", "removed"], batch_size=2048):
                t = pa.Table.from_batches([batch])
                t = t.filter(pc.equal(t["run_id"], run_id))
                if not t.num_rows:
                    continue
                removed = t["removed"].combine_chunks()
                flat = pc.list_flatten(removed)
                for rule, n in zip(*pc.value_counts(flat.field("rule")).flatten()):
                    removals[rule.as_py()] += n.as_py()
                removed_chars = np.bincount(pc.list_parent_indices(removed).to_numpy(),
                                            weights=pc.add(pc.utf8_length(flat.field("text")), 1).to_numpy(),
                                            minlength=t.num_rows)
                chars = t["chars"].fill_null(0).to_numpy()
                lengths.extend(zip((chars + removed_chars).astype(int).tolist(), chars.astype(int).tolist()))
    return lengths, dict(removals)


# ------------------------------------------------------------------------------------------ rendering


def render_run_report(report, lengths: list[tuple[int, int]] | None = None,
                      removals: dict[str, int] | None = None) -> str:
    """The report as one HTML string. ``lengths`` and ``removals`` come from the run's archived rows;
    without them the totals of ``report`` are drawn (its per-rule counts include repairs and fixes)."""
    lengths = lengths or []
    removals = removals if removals is not None else report.removals_by_rule
    esc = html.escape
    kept_like = report.documents + report.duplicates
    truncated_share = report.truncated / kept_like if kept_like else 0.0
    reduction = 1 - report.chars_after / report.chars_before if report.chars_before else 0.0
    seconds = (report.finished_at - report.started_at).total_seconds() if report.finished_at else None

    sections = [
        _section("Documents", bar_chart([
            Bar("in", report.inputs, INPUT), Bar("kept", report.documents, KEPT),
            Bar("duplicate", report.duplicates, DUPLICATE), Bar("rejected", report.rejects, REJECTED),
            Bar("already archived", report.skipped, SKIPPED),
        ], chart_id="documents"), "Every input ends as exactly one of kept, duplicate, rejected or already archived."
            + ("" if report.balanced else " <strong>This run's accounting does not balance.</strong>")),
        _section("Removals per rule", bar_chart(_top(removals, 25), chart_id="removals",
                                                 empty="no removals"), "Lines and blocks taken out, by the rule that took them."),
        _section("Rejects per reason", bar_chart(_top(report.rejects_by_reason, 25, REJECTED), chart_id="rejects",
                                                  empty="no rejects")),
        _section("Repairs per pair", bar_chart(_top(report.repairs_by_pair, 25, AFTER), chart_id="repairs",
                                                empty="no repairs"), "Damaged word -> the word it was repaired to."),
        _section("Languages", bar_chart(_top(report.languages, 25), chart_id="languages", empty="no documents")),
        _section("Text length before and after cleaning",
                 length_histogram(lengths) if lengths else bar_chart(
                     [Bar("before", report.chars_before, BEFORE), Bar("after", report.chars_after, AFTER)],
                     chart_id="lengths", empty="no documents"),
                 f"Characters per document; {report.chars_before:,} before, {report.chars_after:,} after "
                 f"({reduction:.0%} removed as boilerplate, chrome and markup text)."),
        _section("Truncated share", share_bar(report.truncated, kept_like - report.truncated, chart_id="truncated"),
                 f"{report.truncated} of {kept_like} documents ({truncated_share:.0%}) end at a paywall or cut."),
        _section("Ten most removed lines", top_lines_table(report.top_removed_lines)),
    ]
    started = report.started_at.isoformat(timespec="seconds") if isinstance(report.started_at, datetime) else report.started_at
    facts = [
        ("run", report.run_id), ("input", report.input_root), ("archive", report.archive), ("started", started),
        ("duration", f"{seconds:.1f} s" if seconds is not None else "-"),
        ("read", f"{report.bytes_read / 1e6:.2f} MB"),
    ]
    fact_rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in facts)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>docclean run {esc(report.run_id)}</title>
<style>{_CSS}</style></head>
<body><main>
<h1>docclean run <code>{esc(report.run_id)}</code></h1>
<table class="facts">{fact_rows}</table>
<p class="summary">{report.inputs} inputs: <b>{report.documents}</b> kept, <b>{report.duplicates}</b> duplicates,
<b>{report.rejects}</b> rejected, <b>{report.skipped}</b> already archived; {report.demoted} earlier documents demoted to duplicates.</p>
{"".join(sections)}
</main></body></html>
"""


_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;background:#fff;margin:0}
main{max-width:980px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 12px} h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #ddd}
code{font-size:90%} .note{color:#555;margin:4px 0 8px} .empty{color:#777;font-style:italic}
table{border-collapse:collapse} th,td{text-align:left;padding:3px 10px 3px 0;vertical-align:top}
table.facts th{color:#555;font-weight:normal} table.lines td.n{text-align:right}
table.lines td.text{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px;white-space:pre-wrap;word-break:break-word}
table.lines tr:nth-child(even){background:#f5f7fa}
svg text{font:12px system-ui,sans-serif;fill:#222}
"""


def _section(title: str, body: str, note: str = "") -> str:
    note_html = f'<p class="note">{note}</p>' if note else ""
    return f"<section><h2>{html.escape(title)}</h2>{note_html}{body}</section>\n"


def _top(counts: dict[str, int], limit: int, color: str = BAR) -> list[Bar]:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    bars = [Bar(k, v, color) for k, v in items[:limit]]
    if len(items) > limit:
        bars.append(Bar(f"{len(items) - limit} others", sum(v for _, v in items[limit:]), SKIPPED))
    return bars


def bar_chart(bars: list[Bar], chart_id: str, width: int = 900, empty: str = "nothing to show") -> str:
    """Horizontal bars with their labels and values; one row per bar."""
    if not bars or not any(b.value for b in bars):
        return f'<p class="empty" id="chart-{chart_id}">{html.escape(empty)}</p>'
    row, label_w, value_w = 22, min(320, 12 + 7 * max(len(b.label) for b in bars)), 70
    plot_w = width - label_w - value_w
    top = max(b.value for b in bars)
    parts = []
    for i, b in enumerate(bars):
        y = i * row
        w = max(1.0, plot_w * b.value / top) if b.value else 0
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{html.escape(_clip(b.label, 44))}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{b.color}">'
            f"<title>{html.escape(b.label)}: {_fmt(b.value)}</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{_fmt(b.value)}</text>'
        )
    height = row * len(bars)
    return (f'<svg id="chart-{chart_id}" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'>{"".join(parts)}</svg>')


def length_histogram(lengths: list[tuple[int, int]], width: int = 900, height: int = 260) -> str:
    """Documents per length bucket (log scale of characters), before (pink) and after (green) cleaning."""
    values = [v for pair in lengths for v in pair if v > 0]
    lo = 10 ** math.floor(math.log10(min(values))) if values else 1
    hi = max(values) if values else 10
    edges = [lo]
    while edges[-1] < hi:  # buckets of x2: 100, 200, 400, ...
        edges.append(edges[-1] * 2)
    edges = edges[: max(2, len(edges))]
    buckets = len(edges) - 1 or 1

    def count(series: Iterable[int]) -> list[int]:
        c = [0] * buckets
        for v in series:
            i = next((j for j in range(buckets) if v < edges[j + 1]), buckets - 1)
            c[i] += 1
        return c

    before, after = count(b for b, _ in lengths), count(a for _, a in lengths)
    top = max(before + after) or 1
    left, bottom, legend = 40, 40, 22
    plot_h = height - bottom - legend
    slot = (width - left) / buckets
    bar_w = slot * 0.38
    parts = [
        f'<rect x="{left}" y="2" width="12" height="12" fill="{BEFORE}"/><text x="{left + 18}" y="13">before</text>'
        f'<rect x="{left + 90}" y="2" width="12" height="12" fill="{AFTER}"/><text x="{left + 108}" y="13">after</text>',
        f'<line x1="{left}" y1="{legend + plot_h}" x2="{width}" y2="{legend + plot_h}" stroke="#888"/>',
        f'<text x="{left - 6}" y="{legend + 10}" text-anchor="end">{top}</text>'
        f'<text x="{left - 6}" y="{legend + plot_h}" text-anchor="end">0</text>',
    ]
    for i in range(buckets):
        x = left + i * slot + slot * 0.1
        for k, (series, color, name) in enumerate(((before, BEFORE, "before"), (after, AFTER, "after"))):
            h = plot_h * series[i] / top
            parts.append(f'<rect x="{x + k * bar_w:.1f}" y="{legend + plot_h - h:.1f}" width="{bar_w:.1f}" '
                         f'height="{h:.1f}" fill="{color}"><title>{name}, {_fmt(edges[i])}-{_fmt(edges[i + 1])} '
                         f'characters: {series[i]}</title></rect>')
        parts.append(f'<text x="{left + i * slot + slot / 2:.1f}" y="{legend + plot_h + 16}" text-anchor="middle">'
                     f"{_fmt(edges[i])}-{_fmt(edges[i + 1])}</text>")
    parts.append(f'<text x="{left + (width - left) / 2:.0f}" y="{height - 4}" text-anchor="middle">characters per document</text>')
    return (f'<svg id="chart-lengths" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'>{"".join(parts)}</svg>')


def share_bar(truncated: int, complete: int, chart_id: str, width: int = 900) -> str:
    total = truncated + complete
    if total <= 0:
        return f'<p class="empty" id="chart-{chart_id}">no documents</p>'
    w_trunc = width * truncated / total
    return (
        f'<svg id="chart-{chart_id}" role="img" width="{width}" height="48" viewBox="0 0 {width} 48">'
        f'<rect x="0" y="0" width="{w_trunc:.1f}" height="26" fill="{TRUNCATED}"><title>truncated: {truncated}</title></rect>'
        f'<rect x="{w_trunc:.1f}" y="0" width="{width - w_trunc:.1f}" height="26" fill="{COMPLETE}"><title>complete: {complete}</title></rect>'
        f'<text x="0" y="42">truncated {truncated} ({truncated / total:.0%})</text>'
        f'<text x="{width}" y="42" text-anchor="end">complete {complete} ({complete / total:.0%})</text></svg>'
    )


def top_lines_table(lines: list[tuple[str, str, int]]) -> str:
    if not lines:
        return '<p class="empty">no lines removed</p>'
    rows = "".join(
        f'<tr><td class="n">{n}</td><td><code>{html.escape(rule)}</code></td><td class="text">{html.escape(text)}</td></tr>'
        for rule, text, n in lines[:10]
    )
    return f'<table class="lines"><tr><th>times</th><th>rule</th><th>line</th></tr>{rows}</table>'


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "\u2026"


def _fmt(v: float) -> str:
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.1f}"
    v = int(v)
    if v >= 10_000:
        return f"{v / 1000:,.0f}k"
    return f"{v:,}"


def report_from_archive(archive_root: str | Path, run_id: str | None = None):
    """Rebuild the `RunReport` of an archived run (the latest by default) from its runs row and the rows
    it wrote, to (re)draw its report later. Stage timings and bytes read are not archived: left at 0."""
    import pyarrow.compute as pc

    from .archive import ArchiveError
    from .pipeline import RunReport

    archive = Archive(archive_root)
    runs = archive.table("runs")
    if not runs.num_rows:
        raise ArchiveError(f"no runs in the archive at {archive_root}")
    if run_id is None:
        run_id = max(runs.column("run_id").to_pylist())
    rows = runs.filter(pc.field("run_id") == run_id).to_pylist()
    if not rows:
        raise ArchiveError(f"no run {run_id} in the archive at {archive_root}")
    r = rows[0]
    report = RunReport(
        run_id=run_id, input_root=r["input_root"] or "", archive=str(archive.root), started_at=r["started_at"],
        finished_at=r["finished_at"], inputs=r["inputs"] or 0, documents=r["documents"] or 0,
        duplicates=r["duplicates"] or 0, rejects=r["rejects"] or 0, skipped=r["skipped_already_archived"] or 0,
        demoted=r["demoted"] or 0, rejects_by_reason=dict(r["rejects_by_reason"] or []),
        removals_by_rule=dict(r["removals_by_rule"] or []), languages=dict(r["languages"] or []),
    )
    top: Counter = Counter()
    for name in ("documents", "duplicates"):
        if not archive.files(name):
            continue
        t = archive.table(name, columns=["text", "removed", "repairs", "truncated"], filter=pc.field("run_id") == run_id)
        for text, removed, repairs, truncated in zip(*(t.column(c).to_pylist() for c in t.column_names)):
            removed = removed or ()
            report.chars_after += len(text or "")
            report.chars_before += len(text or "") + sum(len(x["text"]) + 1 for x in removed)
            report.truncated += int(bool(truncated))
            for x in repairs or ():
                key = f"{x['original']} -> {x['replacement']}"
                report.repairs_by_pair[key] = report.repairs_by_pair.get(key, 0) + 1
            if name == "documents":
                top.update((x["rule"], x["text"][:200]) for x in removed)
    report.top_removed_lines = [(rule, text, n) for (rule, text), n in top.most_common(10)]
    return report
