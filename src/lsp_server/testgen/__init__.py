"""Test generation validated by execution (DESIGN.md journey 4).

`targets` says what to test, `candidates` asks the local engines (Hypothesis' ghostwriter,
CrossHair) for candidate tests, `funnel` keeps those that collect, pass every rerun in random
order inside the existing suite and add coverage, `possible_bugs` keeps the ones that fail
against the current code, and `placement` merges the kept tests into the project's own test
layout. Everything that runs project code is an exec job (`jobs`) in the sandbox. Nothing here
knows of LSP: the CLI and, later, the server drive the same engine.
"""
