"""``python -m denoise.cli``: the ``denoise`` command."""

import sys

from . import main

sys.exit(main())
