"""A durable claim-and-lease work queue over any table carrying the queue columns."""

from servicegate.queue.lease import Claim, LeaseQueue, QueueStats
from servicegate.storage.queue_columns import (
    DONE,
    FAILED,
    PENDING,
    queue_columns,
    queue_index,
    queue_table_options,
)

__all__ = [
    "DONE",
    "FAILED",
    "PENDING",
    "Claim",
    "LeaseQueue",
    "QueueStats",
    "queue_columns",
    "queue_index",
    "queue_table_options",
]
