"""ServiceGate: a self-hosted gateway for custom services, callbacks, identity search and webhooks."""

__version__ = "0.1.0"
