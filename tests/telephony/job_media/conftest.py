from __future__ import annotations

import sys
from pathlib import Path

# the pool's stand-in conversation lives beside the worker tests; jobs import it by name
sys.path.insert(0, str(Path(__file__).parents[2] / "workers"))
sys.path.insert(0, str(Path(__file__).parents[2] / "server"))
