"""Pictures shared by every stage (matplotlib is imported only when one is drawn).

- :mod:`.slices`: volume slices with the particles' outlines;
- :mod:`.figures`: the evaluation's and training's figures.
"""
