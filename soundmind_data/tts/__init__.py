"""Text-to-speech backends (one module each, see base.py) and the audio rendering they share."""
