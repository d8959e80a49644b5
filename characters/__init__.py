"""The character library: characters, reference assets and sharing between workspaces."""
