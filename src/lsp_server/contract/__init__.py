"""What Gantry's server and its clients exchange beyond LSP's own types: `Diagnostic.data`, the
`gantry/status` notification and the `gantry.*` commands' arguments. Typed as attrs classes,
converted by one cattrs converter, described by JSON Schemas generated from the classes
(`schemas/`) that the Python, TypeScript and Lua tests check their fixtures against.

Leaf modules: the CI client imports them, so nothing here imports pygls or lsprotocol."""
