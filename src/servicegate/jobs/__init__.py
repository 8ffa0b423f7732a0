"""Asynchronous invocations: durable jobs on the lease queue (store, policy, worker, service)."""
