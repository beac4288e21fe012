"""Building, launching and sizing firmware images for the boards in boards/."""
