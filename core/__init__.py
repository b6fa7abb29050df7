"""Ground: settings, clock and errors; imports nothing of the project."""
