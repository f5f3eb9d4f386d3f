"""docclean: clean, deduplicate and archive scraped web and news text as provenance-tagged Parquet."""

__version__ = "0.1.0"

from .archive import open_archive  # noqa: E402  (the public entry point for analysis code)

__all__ = ["__version__", "open_archive"]
