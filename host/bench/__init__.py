"""`tinysplit bench`: kernels, link, host overhead, accuracy and memory, written as tables."""
