"""Headless Gantry: `gantry check` drives the real server over stdio, as an editor would, and
turns the diagnostics it publishes into CI reports (text, JSON, SARIF, GitHub annotations)."""
