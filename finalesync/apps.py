from django.apps import AppConfig


class FinalesyncConfig(AppConfig):
    name = "finalesync"
    verbose_name = "Finale sync"

    def ready(self):
        from . import checks  # noqa: F401 - registers the system checks
        from .datatypes import registry
        from .unchanged import fingerprint_reading_code

        _return_freed_memory()
        fingerprint_reading_code(registry.DATATYPES.values())


def _return_freed_memory() -> None:
    """A sync's report pieces and Arrow batches come and go a few megabytes at a time; by default much of
    what they free stays with the process (a million-row sync then peaked near 400 MB: docs/benchmarks.md).

    - Arrow allocates from its jemalloc pool, told to hand freed pages straight back to the system;
    - glibc's malloc serves blocks of 1 MiB and more with their own mappings, returned when freed (by default
      the threshold grows with the largest block freed, and freed pieces stay in the heap)."""
    import ctypes
    import ctypes.util

    import pyarrow as pa

    try:
        pool = pa.jemalloc_memory_pool()
        pa.jemalloc_set_decay_ms(0)
        pa.set_memory_pool(pool)
    except NotImplementedError:  # a pyarrow built without jemalloc keeps its default pool
        pass
    m_mmap_threshold = -3
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(m_mmap_threshold, 1 << 20)
    except (OSError, AttributeError):  # not glibc: its own allocator's defaults stay
        pass
