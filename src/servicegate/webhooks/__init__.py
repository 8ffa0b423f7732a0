"""Webhooks and events: catalog, registration, durable fan-out, signed delivery, retries."""
