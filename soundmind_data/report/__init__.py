"""What a person reads, as text and images the library returns: tables (`table`) and the plots of a corpus (`plots`).
Over `core` and `text`. Printing them is the front end's (`soundmind_data/console.py`)."""
