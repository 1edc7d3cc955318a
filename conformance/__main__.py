"""``python -m conformance``: run the conformance runner (see conformance/run.py)."""

import sys

from conformance.run import main

sys.exit(main())
