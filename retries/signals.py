"""What the retry queue tells the layer above it (health's alerts), without importing it.

`retry_exhausted(sender=RetryItem, item=RetryItem)`: the queue gave up on an item (its retries are used up).
"""

from django.dispatch import Signal

retry_exhausted = Signal()
