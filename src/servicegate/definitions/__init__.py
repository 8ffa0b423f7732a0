"""Service definitions: the YAML model, loading with file/line errors, the hot-reloaded registry."""
