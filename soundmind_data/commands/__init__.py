"""Commands over a finished corpus that are not pipeline stages: `add` (new items join a manifest) and `diff` (what
changed between two manifests). They have no `STAGE` declaration and take their own arguments; `add` runs stages'
engines (ingest's importers, the split assignment, the synthesis driver) on the items it adds."""
