import jax


def memory_budget() -> int:
    """Bytes one batch of work may take (dataset generation, evaluation chunks): a
    quarter of the device memory where JAX reports it (GPU), 512 MiB otherwise
    (CPU)."""
    stats = jax.devices()[0].memory_stats() or {}
    return stats["bytes_limit"] // 4 if "bytes_limit" in stats else 512 * 2**20
