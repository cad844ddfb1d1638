"""The bottom layer: the corpus contract (item fields, id rule, side-file names, schemas) and the plumbing every
other layer stands on (errors and exit codes, atomic writes, JSONL, digests, the user cache, paths inside a corpus,
redaction, worker pools, devices) and the stage contract itself (`stage.Stage`). Nothing here imports another
soundmind_data package."""
