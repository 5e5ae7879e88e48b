"""`sasrec-id`: the item table of a trained ID-only SASRec (RAT's teacher, TSLRec's input,
E4SRec's ID embeddings).
"""
