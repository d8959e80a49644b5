"""The generation engine: jobs, providers, emulators, routing and prices (scene-agnostic)."""
