"""The Hugging Face Hub: the Hub-ready folder (`folder`: parquet shards, pre-push check), its dataset card (`card`)
and the resumable upload (`upload`). The SoundMind release's own layout, which ingest reads and export writes, is
`engines.soundmind_layout`."""
