"""pipeline/methods/semantic"""
