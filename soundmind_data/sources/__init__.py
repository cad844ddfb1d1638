"""The upstream files the corpus is built from, and their download: `soundmind-data sources fetch`.

The package, by job: `catalog.py` the table of sources and the lock file of the digests first seen, `run.py` the
fetch itself (`fetch`), `download.py` the bounded, resumable HTTP download of one file of the table (its partials
and their resume state in `partials.py`), `recordings.py` a Hub source's recordings through `huggingface_hub`,
`report.py` what a fetch did. This module only re-exports.
"""

from soundmind_data.sources.catalog import LOCK_NAME, MAX_SIZE, SOURCES, Source, SourceFile
from soundmind_data.sources.download import TIME_LIMIT_S
from soundmind_data.sources.run import fetch

__all__ = ["LOCK_NAME", "MAX_SIZE", "SOURCES", "Source", "SourceFile", "TIME_LIMIT_S", "fetch"]
