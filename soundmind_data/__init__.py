"""soundmind-data: build, curate and publish audio logical-reasoning corpora like SoundMind."""

__version__ = "0.2.0"
