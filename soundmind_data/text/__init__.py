"""Text rules over `core`: how written text is spoken (`speech_text`, `speakable`), how text is compared
(`textkey`), and the question template (`template`)."""
