"""Voice engines (one module each, registered in base.py's VOICE_ENGINES) and the audio rendering they share."""
