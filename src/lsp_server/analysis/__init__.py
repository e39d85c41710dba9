"""Parsing with tree-sitter: languages, the workspace indexer, review units and fingerprints."""
