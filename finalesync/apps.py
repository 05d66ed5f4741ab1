from django.apps import AppConfig


class FinalesyncConfig(AppConfig):
    name = "finalesync"
    verbose_name = "Finale sync"

    def ready(self):
        from . import checks  # noqa: F401 - registers the system checks

        _arrow_memory_pool()


def _arrow_memory_pool() -> None:
    """Arrow's jemalloc pool, handing freed pages straight back to the system: a sync's batches come and go,
    and the default pool keeps about a hundred megabytes of them after a million-row sync
    (docs/benchmarks.md)."""
    import pyarrow as pa

    try:
        pool = pa.jemalloc_memory_pool()
        pa.jemalloc_set_decay_ms(0)
    except NotImplementedError:  # a pyarrow built without jemalloc keeps its default pool
        return
    pa.set_memory_pool(pool)
