"""Gantry: an AI engineering assistant that lives in a language server."""

__version__ = "0.1.0"
