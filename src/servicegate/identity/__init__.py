"""Identity search: storage, the simplified OData filter language, import and generation."""
