"""The Hub-ready folder of a corpus: parquet shards with the audio embedded, as users load them with `datasets`.

The publish stage (stages/publish.py) builds it here, then adds the card (hub/card.py) and plots and uploads it (hub/upload.py);
export reuses the audio checks. The folder holds `data/{split}-{i:05d}-of-{n:05d}.parquet` with the audio embedded
as FLAC bytes and the Hugging Face features in each file's schema metadata (so `datasets` sees `Audio` and
`ClassLabel` columns). Items stream through one at a time: only the row group being filled (at most ROW_GROUP_ROWS
rows per split) is ever in memory, whatever the corpus size.

Shards are byte-for-byte reproducible from the same manifest and audio, so republishing re-uploads only what changed.
They are written with the parquet options `datasets` 5 writes with (`to_parquet`, `push_to_hub`): content-defined
page boundaries, pages of at most about 1 MiB, and a page index, so that a reader can fetch one page of a row group
rather than all of it. The audio bytes are stored as they are, so the Hub's Xet storage, which deduplicates by
content-defined chunks of the file, stores little again when an item changes (`bench/publish.py` measures it).
A folder is rebuilt beside its old contents (in `.building/`) and swapped in by renames, so that whenever the folder
holds a `data/` it is a whole one, and whenever it holds a card the card describes that `data/`.

By job: `audio` (an item's audio files checked against their entries, re-encoded where needed: export uses it too),
`rows` (an item as a published row, and the features `datasets` shows), `shards` (the parquet shard writer), `build`
(the folder built from a manifest and swapped in) and `check` (the pre-push check: the folder loaded as users will).
"""
