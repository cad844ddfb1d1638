"""The corpus rules that stages and commands share, below them: source files made items (`importers`: ingest's
engine, which add reads new items with), the SoundMind release's folder layout (`soundmind_layout`: ingest reads it,
export writes it), gold answers and answer checks (`answers`), the field rules of source records
(`source_records`), the manifest audit (`manifest_audit`) and the manifest scanner, seeded hashing and split
assignment (`splitting`). A stage imports these; these import no stage."""
