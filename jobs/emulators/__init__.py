"""Provider emulators: the real wire protocols, real MP4 results (MP3 speech), injectable faults."""
