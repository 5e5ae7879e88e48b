"""pipeline/methods/sasrec_id"""
