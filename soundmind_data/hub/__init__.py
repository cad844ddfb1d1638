"""The Hugging Face Hub: the Hub-ready folder (`folder`: parquet shards, pre-push check), its dataset card (`card`),
the SoundMind release's own folder layout (`soundmind_layout`, for ingest and export), and the resumable upload
(`upload`)."""
