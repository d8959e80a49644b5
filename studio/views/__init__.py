"""Views of the studio: workspaces and members, series, episodes and scenes."""
