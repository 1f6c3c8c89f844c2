"""Presentation: human (rich) and machine output."""
