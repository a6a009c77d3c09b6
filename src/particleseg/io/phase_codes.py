"""The codes of a sample's phase map (``dataset.json`` ``"phases"``: a uint8 volume).

- :data:`AIR` (0): outside the sample (air around a resin cylinder);
- :data:`MATRIX` (1): what fills the space between particles (resin, water or air);
- :data:`VOID` (2): voids and bubbles in the matrix;
- :data:`PORE` (3): empty pores and cracks inside particles;
- :data:`MATERIAL0` + k (4 ... 255): mineral phase k of the sample, by increasing attenuation.
"""

AIR, MATRIX, VOID, PORE, MATERIAL0 = 0, 1, 2, 3, 4
MAX_MATERIALS = 256 - MATERIAL0
PHASE_CODES = {
    "0": "air outside the sample",
    "1": "matrix between particles (resin, water or air)",
    "2": "voids and bubbles in the matrix",
    "3": "pores and cracks inside particles",
    "4+k": "mineral phase k (hosts and inclusions), by increasing attenuation",
}
