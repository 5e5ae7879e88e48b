"""TSLRec (METHODS.md §5): data (k-means categories, histograms), sft (the loops), write
(run + store version), generator (the registry entry).
"""
