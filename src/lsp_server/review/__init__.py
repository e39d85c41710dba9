"""Review engines: they take a document snapshot and return plain findings, knowing nothing of LSP."""
