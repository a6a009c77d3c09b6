"""``python -m particleseg.annotation``: see :mod:`particleseg.annotation.cli`."""

import sys

from particleseg.annotation.cli import main

sys.exit(main())
