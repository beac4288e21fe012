"""After training: predictions through the split model (infer) and the whole model in one
piece for a board that runs it alone (export-model)."""
