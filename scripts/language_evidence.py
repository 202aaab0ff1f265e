"""What the auto-mode language policy makes of each rendered multilingual caller turn: whisper base
(primed as the bilingual agent's calls are, or not) identifies and transcribes it among en and hi,
and the policy says whether it counts and whether it is a request. Reports; asserts nothing.

    PYTHONPATH=src .venv/bin/python scripts/language_evidence.py [--unprimed]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "src"))

from make_fixtures import load_multilingual  # noqa: E402

from voxline.agent.config import load_agent  # noqa: E402
from voxline.audio.wav import read_wav  # noqa: E402
from voxline.conversation.language import LanguagePolicy  # noqa: E402
from voxline.conversation.language_request import requested_language  # noqa: E402
from voxline.engines.catalog import resolve  # noqa: E402
from voxline.engines.factory import whisper_prompts  # noqa: E402
from voxline.engines.stt_whisper import WhisperSTT  # noqa: E402


async def main(unprimed: bool) -> None:
    agent = load_agent(ROOT / "examples" / "agents" / "bilingual.yaml")
    prompts = None if unprimed else whisper_prompts(agent)
    stt = WhisperSTT(resolve("base", "stt"), name="base", prompts=prompts)
    policy = LanguagePolicy(agent)
    threshold = agent.languages.min_confidence
    for turn in load_multilingual():
        if turn.language not in policy.allowed:
            continue
        transcript, guess = await stt.transcribe_with_language(read_wav(turn.path, 16000), ["en", "hi"])
        heard, counts = policy.evidence(guess.language, guess.probability, transcript.text)
        before = guess.probability >= threshold  # the rule before issue 16: the probability alone
        request = requested_language(transcript.text, policy.allowed)
        print(
            f"{turn.id:16} said={turn.language} lid={guess.language}:{guess.probability:.2f} "
            f"counts_before={before!s:5} counts_now={counts!s:5} as={heard} request={request} "
            f"text={transcript.text!r}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--unprimed", action="store_true", help="whisper's own prompts, no request phrases")
    asyncio.run(main(parser.parse_args().unprimed))
