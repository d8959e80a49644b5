"""Consistency: how far a take drifted from its characters' references (face, clothing, style)."""
