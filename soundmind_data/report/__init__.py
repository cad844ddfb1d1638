"""What a person reads: tables (`table`), the terminal's progress bars and summaries (`console`) and the plots of a
corpus (`plots`). Over `core` and `text`."""
