"""The review page: a static site to listen to a corpus and see why each item was kept or dropped.

`sources.py` says what a page is made from and keeps that record beside it (sources.json), `collect.py` finds the
items dropped on the way to the corpus and a validated manifest's measurements, `page.py` writes the site
(`write_review`); its HTML, script and style are the files of `site/`. This module only re-exports.
"""

from soundmind_data.review.page import CHUNK, PAGE, ReviewReport, write_review
from soundmind_data.review.sources import SOURCES_FILE, ReviewSources, StageStep, review_sources_of, \
    saved_inputs_sha256, sources_of_page

__all__ = ["CHUNK", "PAGE", "SOURCES_FILE", "ReviewReport", "ReviewSources", "StageStep", "review_sources_of",
           "saved_inputs_sha256", "sources_of_page", "write_review"]
