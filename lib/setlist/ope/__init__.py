"""Off-policy evaluation: logging policies with propensities (publish), estimators, simulation.

``policies``: how publish explores and the probability of each (track, position) under it.
``estimators``: IPS, SNIPS and doubly robust values of a target policy from logged slates.
``simulation``: a position-based response model over the generator's true preferences, the
ground truth ``bench/ope.py`` checks the estimators against. Torch-free, numpy only.
"""
