"""Source loaders: each turns files in its real format into a RawData.

A loader is a module with `load(cfg: DataConfig, cache_dir: Path) -> RawData`, registered
in pipeline/data/config.py's SOURCES (whose `Source.load` imports and calls it). It
validates its input (missing files, missing columns, undecodable rows) with one-line
InputErrors and counts rows it skips in RawData.counts.
"""
