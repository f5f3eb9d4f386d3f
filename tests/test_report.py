"""The static HTML run report: written by every run, self-contained, and drawn by a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from docclean import pipeline
from docclean.config import load_config
from docclean.report import KEPT, REJECTED, render_run_report, report_path, write_run_report


SAMPLE = Path(__file__).resolve().parents[1] / "raw"


def _report(**overrides) -> pipeline.RunReport:
    start = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    values = dict(
        run_id="20260105T090000Z-abc123", input_root="raw", archive="clean", started_at=start,
        finished_at=start + timedelta(seconds=4), inputs=10, documents=6, duplicates=2, rejects=2,
        removals_by_rule={"site_header": 5, "sponsor_line": 3}, repairs_by_pair={"intconcludes -> intends": 1},
        languages={"en": 5, "fr": 3}, chars_before=9000, chars_after=7000, truncated=1,
        rejects_by_reason={"empty_file": 2},
        top_removed_lines=[("site_header", "THE MORNING HERALD ONLINE", 5), ("sponsor_line", "<b>Sponsor: QWIKET</b>", 3)],
    )
    values.update(overrides)
    return pipeline.RunReport(**values)


def test_report_has_every_chart_and_the_top_removed_lines():
    page = render_run_report(_report(), lengths=[(1200, 900), (3000, 2500), (400, 390)],
                             removals={"site_header": 5, "sponsor_line": 3})
    for chart in ("documents", "removals", "rejects", "repairs", "languages", "lengths", "truncated"):
        assert f'id="chart-{chart}"' in page and f'<svg id="chart-{chart}"' in page, chart
    assert "THE MORNING HERALD ONLINE" in page
    assert "intconcludes -&gt; intends" in page
    # Removed text is shown, never interpreted.
    assert "&lt;b&gt;Sponsor: QWIKET&lt;/b&gt;" in page and "<b>Sponsor" not in page


def test_report_is_self_contained():
    page = render_run_report(_report(), lengths=[(1200, 900)])
    assert "<script" not in page and "<link" not in page and "<img" not in page
    assert not re.search(r"https?://", page), "the report must not load anything from the network"


def test_empty_run_renders_without_charts_of_nothing():
    page = render_run_report(_report(inputs=3, documents=0, duplicates=0, rejects=0, skipped=3, removals_by_rule={},
                                     repairs_by_pair={}, languages={}, chars_before=0, chars_after=0, truncated=0,
                                     rejects_by_reason={}, top_removed_lines=[]))
    assert "no removals" in page and "no lines removed" in page
    assert '<svg id="chart-documents"' in page  # 3 already archived is still something to show


def test_every_run_writes_its_report_into_the_archive(corpus, tmp_path):
    out = tmp_path / "clean"
    report = pipeline.run(corpus, out, load_config())
    path = report_path(out, report.run_id)
    assert path.is_file()
    page = path.read_text(encoding="utf-8")
    assert report.run_id in page and 'id="chart-lengths"' in page
    assert "advertisement_marker" in page  # removals per rule, from the run's archived rows
    # Rewriting it (e.g. after a report format change) gives the same file.
    assert write_run_report(out, report).read_text(encoding="utf-8") == page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def screenshot(html_file: Path, png: Path, profile: Path, size=(1000, 2400)) -> None:
    browser = _chromium()
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--hide-scrollbars", f"--window-size={size[0]},{size[1]}",
           f"--screenshot={png}", html_file.resolve().as_uri()]
    subprocess.run(cmd, check=True, timeout=120, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


@pytest.mark.slow
def test_report_of_the_sample_run_renders_its_charts_in_headless_chromium(tmp_path):
    if _chromium() is None:
        pytest.skip("chromium is not installed (CI installs Debian's `chromium`: apt-get install -y chromium)")
    Image = pytest.importorskip("PIL.Image", reason="Pillow reads the screenshot")
    out = tmp_path / "clean"
    report = pipeline.run(SAMPLE, out, load_config())  # the repository's own raw/ sample
    png = tmp_path / "report.png"
    screenshot(report_path(out, report.run_id), png, tmp_path / "chromium-profile")

    image = Image.open(png).convert("RGB")
    assert image.size == (1000, 2400)
    total = image.size[0] * image.size[1]
    colours = {rgb: n for n, rgb in image.getcolors(maxcolors=total)}
    white_share = colours.get((255, 255, 255), 0) / total
    assert white_share < 0.97, "the screenshot is (nearly) blank"
    # The bars themselves are drawn: solid areas in the chart colours, not just text.
    assert colours.get(_rgb(KEPT), 0) > 2000, "no kept-documents bars in the screenshot"
    assert colours.get(_rgb(REJECTED), 0) > 500, "no rejected/truncated bars in the screenshot"
