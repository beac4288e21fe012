"""Where to cut a model for a board: memory, instructions and wire time per candidate cut."""
