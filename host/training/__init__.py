"""Split training: the server segment, the step loop, checkpoints, baselines and simulation."""
