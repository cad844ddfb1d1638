"""The corpus rules that stages and commands share, below them: gold answers and answer checks (`answers`), source
records made items (`source_records`), the manifest audit (`manifest_audit`) and the manifest scanner, seeded hashing
and split assignment (`splitting`). A stage imports these; these import no stage."""
