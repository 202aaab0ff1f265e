from __future__ import annotations

import sys
from pathlib import Path

# the stand-ins live beside the tests; jobs import them by name through the pool's PYTHONPATH
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "server"))
