"""torch modules only: they know nothing of files, Parquet, Prefect or the store."""
