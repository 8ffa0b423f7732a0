"""The HTTP surface: one module per API group. Each exposes `routes()` and `OPENAPI`."""
