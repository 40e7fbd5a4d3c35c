"""The model-zoo experiment: does a BSCT figure predict MD failure across many potentials, and
better than force error does?

``members`` lists the potentials and why their smoothness differs, ``contract`` holds the torch
artifact models, ``runner`` trains, scores (BSCT) and runs MD per member (resumable) and answers
the question per figure, ``report`` writes the tables and the scatter plots (``pesprobe zoo``).
"""
