"""The SOP language: spec, loader, lint, context reference and the sandboxed template engine."""
