"""`semantic`: a frozen LLM's mean-pooled, centred item and user vectors.

encode (texts → vectors), write (two store versions), sharded (the same in parts, for
Dask/Ray), generator (the registry entry).
"""
