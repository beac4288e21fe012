"""tinysplit."""
