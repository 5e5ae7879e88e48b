"""pipeline/methods/tslrec"""
