"""Remote inference and execution with a durable local fallback queue.

Independent of the language server: nothing here may import ``lsp_server``.
"""
