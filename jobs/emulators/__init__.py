"""Provider emulators: the real wire protocols, real MP4 results, injectable faults."""
