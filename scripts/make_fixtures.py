"""Check the test fixtures that come from Debian packages, and build derived ones into .cache/fixtures.

Run by `make test`'s setup. Nothing generated here is committed.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from speech import caller_turns, transcripts  # noqa: E402


def main() -> int:
    try:
        turns = caller_turns()
    except (FileNotFoundError, KeyError) as exc:
        print(f"[fixtures] missing test speech: {exc}", file=sys.stderr)
        return 1
    print(f"[fixtures] {len(turns)} caller turns of recorded speech, {len(transcripts())} transcripts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
