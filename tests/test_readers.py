"""The archive from analysis code: pyarrow, pandas, polars and duckdb read it as the README shows."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from conftest import write_corpus
from docclean import open_archive, pipeline
from docclean.archive import DOCUMENTS_SCHEMA, SCHEMA_VERSION, ArchiveError, SchemaVersionError
from docclean.config import load_config

KEPT = {"wire/fishermen.txt", "web/liege_letter.txt", "web/freiburg_de.txt", "web/night_trains.html", "web/crier.jsonl#1"}


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("readers")
    write_corpus(root / "raw")
    pipeline.run(root / "raw", root / "clean", load_config())
    return root / "clean"


def test_pyarrow_dataset_with_the_documented_schema(clean):
    dataset = open_archive(clean)
    assert dataset.schema.equals(DOCUMENTS_SCHEMA)  # the same columns and types, whatever the files
    table = dataset.to_table(columns=["source_path", "language", "truncated"], filter=pc.field("language") == "en")
    assert set(table.column("source_path").to_pylist()) == KEPT - {"web/freiburg_de.txt"}
    # Every file says which schema version wrote it, and with which configuration.
    meta = pq.read_schema(next((clean / "documents").glob("*.parquet"))).metadata
    assert meta[b"docclean.schema_version"] == SCHEMA_VERSION.encode()
    assert json.loads(meta[b"docclean.config"])["language"]["keep"] == []


def test_other_tables_open_too(clean):
    assert open_archive(clean, "duplicates").count_rows() == 1
    assert open_archive(clean, "rejects").count_rows() == 2
    runs = open_archive(clean, "runs").to_table().to_pylist()
    assert len(runs) == 1 and runs[0]["documents"] == 5


def test_pandas(clean):
    pd = pytest.importorskip("pandas")
    df = pd.read_parquet(clean / "documents")
    assert set(df["source_path"]) == KEPT
    letter = df.set_index("source_path").loc["web/liege_letter.txt"]
    assert bool(letter["truncated"]) and str(letter["published"].date()) == "2025-02-26"
    rules = df.explode("removed")["removed"].dropna().map(lambda r: r["rule"])
    assert "advertisement_marker" in set(rules)
    # or through the dataset, with its declared types
    assert len(open_archive(clean).to_table().to_pandas()) == 5


def test_polars(clean):
    pl = pytest.importorskip("polars")
    df = pl.scan_parquet(str(clean / "documents" / "*.parquet")).filter(pl.col("language") == "de").collect()
    assert df["source_path"].to_list() == ["web/freiburg_de.txt"]
    per_rule = (
        pl.read_parquet(str(clean / "documents" / "*.parquet"))
        .select("removed").explode("removed").unnest("removed")
        .group_by("rule").len()
    )
    assert "copyright_footer" in per_rule["rule"].to_list()
    assert pl.from_arrow(open_archive(clean).to_table()).height == 5


def test_duckdb(clean):
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    files = str(clean / "documents" / "*.parquet")
    (n,) = con.execute(f"select count(*) from read_parquet('{files}') where truncated").fetchone()
    assert n == 1
    rules = dict(con.execute(
        f"select r.rule, count(*) from read_parquet('{files}'), unnest(removed) as t(r) group by 1").fetchall())
    assert rules["advertisement_marker"] == 1
    # The schema version is in each file's key-value metadata.
    versions = {row[0] for row in con.execute(
        f"select decode(value) from parquet_kv_metadata('{files}') where decode(key) = 'docclean.schema_version'").fetchall()}
    assert versions == {SCHEMA_VERSION}
    # Or straight from the pyarrow dataset (no copy).
    dataset = open_archive(clean)
    assert con.execute("select count(*) from dataset").fetchone()[0] == 5


def test_a_newer_major_schema_version_is_refused_with_a_clear_message(clean, tmp_path):
    future = tmp_path / "future"
    (future / "documents").mkdir(parents=True)
    table = pq.read_table(next((clean / "documents").glob("*.parquet")))
    meta = dict(table.schema.metadata) | {b"docclean.schema_version": b"2.0"}
    pq.write_table(table.replace_schema_metadata(meta), future / "documents" / "part-x.parquet")
    with pytest.raises(SchemaVersionError, match=r"schema 2\.0.*Upgrade docclean"):
        open_archive(future)
    with pytest.raises(ArchiveError, match="no archive"):
        open_archive(tmp_path / "absent")
