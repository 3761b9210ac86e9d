"""Index and outcome codes shared by the Spark side and the model (no torch here).

Item indices: 0 pads, 1 is the reserved index of a track the model's vocabulary does not know,
real tracks start at 2. Outcome of a play: 0 pads, 1 a skip or short play, 2 a listen.
"""
PAD = 0
UNKNOWN = 1
FIRST_ITEM = 2
SKIPPED, LISTENED = 1, 2
