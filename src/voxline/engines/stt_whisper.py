"""Speech-to-text with faster-whisper (CTranslate2), run in the model thread pool.

Tuned for phone turns, not for files: greedy decoding at temperature 0 only (no fallback re-decodes),
no timestamps, no conditioning on earlier text, our own VAD already cut the turn, and a hard cap on
generated tokens so bad audio cannot make whisper loop for a minute.

A turn fits whisper's 30 s window, so we drive the model one window at a time ourselves instead of
through `WhisperModel.transcribe`: the window is encoded once and that encoder output is kept, so the
language probabilities (one decoder step), the decode in the chosen language and any re-decode all
reuse it. faster-whisper's own auto-detect encodes the audio twice, which costs a whole encoder pass
(most of a turn's STT time on CPU). Longer audio goes through `transcribe` as before.

Hindi and Marathi must come out in Devanagari, but whisper base often writes spoken Hindi in Urdu
script (or romanised). A Devanagari prompt steers it; if mostly other script still comes out, the
same encoder output is decoded again with every token that could write Arabic or Latin letters suppressed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxline.audio.levels import speech_end_s, speech_start_s
from voxline.audio.pcm import AudioChunk
from voxline.audio.resample import resample
from voxline.engines._threaded import run_model
from voxline.engines.base import LanguageGuess, ModelNotInstalledError, Transcript
from voxline.engines.lid_whisper import restrict_to_candidates
from voxline.language.registry import default_stt_prompts
from voxline.language.script import script_shares, writes_in

log = logging.getLogger(__name__)

WHISPER_RATE = 16000
WINDOW_SAMPLES = 30 * WHISPER_RATE
FIT_PAD_SAMPLES = WHISPER_RATE
"""Silence (1 s) after the turn in a fitted window: whisper expects speech to end before its window
does, and without it the last word is dropped more often."""
FIT_MIN_WINDOW_SAMPLES = 10 * WHISPER_RATE
"""Shorter windows make whisper repeat itself ("I lost my card. I lost my card."): with 10 s, tiny.en
is about as accurate as with 30 s (WER 6.0 % vs 4.3 % on our 29 English telephone turns, base 4.7 %
vs 3.9 %, Hindi unchanged) in a third of the time."""
FIT_WINDOW_PER_SPEECH = 3
"""A fitted window is at least this many times the turn: with the turn over about half of it, tiny.en
loops ("... How can I help you today? How can I help you today? ..." six times) on a two-sentence turn
with a 3 s pause (6.3 s in 10 s: looped in 3 of 3 Piper renders; in 15 s: fine; 8.3 s in 15 s: looped;
turns at a third of the window or less never looped)."""
CUT_SHORT_MIN_SPAN_S = 2.5
CUT_SHORT_WORDS_PER_S = 1.5
"""A fitted window's transcript with fewer words than this per second of sound (over turns of at least
CUT_SHORT_MIN_SPAN_S) is decoded again on the full window. On the fitted window the no-timestamp
decoder is about twice as ready to end at a sentence's full stop (P(end of text) after the first of
two sentences: median 9 %, worst 17 % over 20 Piper renders, against 4.5 % and 7 % on the full
window), which once dropped a turn's second sentence in CI. Natural speech runs above this rate: 5 %
of the 175 recorded Asterisk prompts of 2 s or more are under 1.95 words/s, two under 1.5 (slow
two-word phrases), so the second decode is rare and costs only that turn a full-window pass. Words
per second cannot tell half of a fast speaker from all of a slow one: a cut after a pause between the
sentences falls well under it (0.9-1.4 words/s on our two-sentence Piper turns with 1.5-3 s pauses),
a cut in fast continuous speech (2.1 words/s) does not."""
MAX_NEW_TOKENS = 96
NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0

# Each language's steering prompt is its module's `stt_prompt` (voxline.language.languages): short,
# everyday phone-call lines in the script we want back. Whisper continues the style of the text
# before the audio, so a Devanagari prompt tips base towards Devanagari output for Hindi.


LOOP_REPEATS = 3
"""A phrase said this many times in a row is a decoder loop, not speech: keep one copy."""


def drop_repetition_loops(text: str, max_phrase_words: int = 4) -> str:
    """Collapse runs of one to `max_phrase_words` words repeated LOOP_REPEATS or more times in a row.

    Whisper base loops on unclear audio ("भी भी भी भी …", "बारे बारे …") until the token cap, and the
    model would answer that noise. A caller repeating a word twice ("no, no") is left alone.
    """
    words = text.split()
    for size in range(1, max_phrase_words + 1):
        out: list[str] = []
        i = 0
        while i < len(words):
            phrase = words[i : i + size]
            repeats = 1
            while words[i + repeats * size : i + (repeats + 1) * size] == phrase:
                repeats += 1
            if len(phrase) == size and repeats >= LOOP_REPEATS:
                out.extend(phrase)
                i += repeats * size
            else:
                out.append(words[i])
                i += 1
        words = out
    return " ".join(words) if len(words) < len(text.split()) else text


def arabic_share(text: str) -> float:
    """Share of the letters in `text` that are Arabic script (Urdu is written in it)."""
    return script_shares(text).get("arabic", 0.0)


def devanagari_share(text: str) -> float:
    """Share of the letters in `text` that are Devanagari (vowel signs count as letters)."""
    return script_shares(text).get("devanagari", 0.0)


def _byte_level_decoder() -> dict[str, int]:
    """GPT-2 byte-level BPE writes each byte as one printable character; this maps them back."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def foreign_script_token_ids(vocabulary: Mapping[str, int]) -> list[int]:
    """Ids of the tokens that would write Hindi in another script: any holding a UTF-8 lead byte of
    the Arabic block (U+0600-U+06FF: 0xD8-0xDB; without one no Arabic letter can begin) or a Latin
    letter (romanised Hindi, base's other habit). Devanagari (0xE0 0xA4/0xA5), digits and
    punctuation stay allowed."""
    decode = _byte_level_decoder()
    ids = []
    for token, token_id in vocabulary.items():
        if token.startswith("<|"):
            continue
        raw = [decode.get(ch, 0) for ch in token]
        if any(0xD8 <= b <= 0xDB or (chr(b).isascii() and chr(b).isalpha()) for b in raw):
            ids.append(token_id)
    return sorted(ids)


@dataclass(slots=True)
class _Window:
    """One ≤30 s window after whisper's encoder, kept for identification and (re-)decoding."""

    key: bytes
    encoder_output: Any
    fitted: bool = False
    language_probabilities: dict[str, float] | None = None


@dataclass(frozen=True, slots=True)
class _Decoded:
    text: str
    avg_logprob: float
    no_speech_prob: float


@dataclass(slots=True)
class WhisperStats:
    """Work done so far (observability and tests): encoder passes, decodes, and how often the
    Devanagari safety net had to decode again, per language."""

    encodes: int = 0
    decodes: int = 0
    redecodes: int = 0
    redecodes_by_language: dict[str, int] = field(default_factory=dict)
    full_window_redecodes: int = 0
    """Fitted-window transcripts that looked cut short and were decoded again on the full window."""


class WhisperSTT:
    """faster-whisper behind the STT protocol. `model` is a local CT2 folder or, for online users,
    a faster-whisper size/hub id. `prompts` (language → text in the wanted script) replaces the
    built-in Devanagari steering prompts; `{}` turns first-pass steering off (the safety net still uses
    them)."""

    def __init__(
        self,
        model: Path | str,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 2,
        beam_size: int = 1,
        max_new_tokens: int = MAX_NEW_TOKENS,
        name: str | None = None,
        prompts: Mapping[str, str] | None = None,
        no_repeat_ngram_size: int = 0,
        repetition_penalty: float = 1.0,
        window: str = "auto",
    ) -> None:
        """`window="fit"` encodes the turn plus silence up to 10 s (or three times the turn) instead of
        whisper's whole 30 s window: the encoder's cost follows its input length, so a phone turn costs
        a third as much (~115 ms instead of ~360 ms for tiny.en on 2 cores). `"full"` is whisper's own
        way, and `"auto"` (the default) is `"full"` for every model: on the fitted window the
        no-timestamp decoder is about twice as ready to end the transcript at a sentence's full stop
        (P(end of text) after the first sentence of a two-sentence Piper line: median 9 %, worst 17 %
        over 20 renders, against 4.5 % and 7 % on the full window), which is how it once dropped a
        turn's second sentence in CI, and greedy decoding has no second chance. Multilingual models
        need the full window anyway for language identification (Hindi was identified in 7 of 12
        Kokoro turns with a fitted window). With `fit`, a transcript that looks cut short for the
        sound it came from is decoded again on the full window (see CUT_SHORT_WORDS_PER_S); that
        catches a cut after a pause, not one in fast continuous speech."""
        if window not in ("auto", "fit", "full"):
            raise ValueError(f"window must be 'auto', 'fit' or 'full', not {window!r}")
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise ModelNotInstalledError("whisper needs faster-whisper: pip install 'voxline[stt]'") from exc
        self.name = f"whisper:{name or Path(str(model)).name}"
        self._model: Any = WhisperModel(
            str(model), device=device, compute_type=compute_type, cpu_threads=cpu_threads
        )
        self.multilingual: bool = bool(self._model.model.is_multilingual)
        self._fit_window = window == "fit"
        self._beam_size = beam_size
        self._max_new_tokens = max_new_tokens
        self._no_repeat_ngram_size = no_repeat_ngram_size
        self._repetition_penalty = repetition_penalty
        self._prompts = dict(default_stt_prompts() if prompts is None else prompts)
        self.stats = WhisperStats()
        # CTranslate2 can run requests in parallel, but on a small CPU two at once only makes both
        # slow; serialising keeps each turn's latency predictable. The lock also guards the caches.
        self._lock = threading.Lock()
        self._last_window: _Window | None = None
        self._tokenizers: dict[str, Any] = {}
        self._suppress: dict[str, tuple[int, ...]] = {}
        self._foreign_ids: list[int] | None = None

    # ------------------------------------------------------------ async API (model pool)

    async def transcribe(self, audio: AudioChunk, language: str | None = None) -> Transcript:
        """`language=None` detects it among all of whisper's languages (multilingual models)."""
        if not self.multilingual:
            language = "en"
        samples = _samples(audio)
        transcript, _ = await run_model(self._transcribe_blocking, samples, None, language, language is None)
        return transcript

    async def transcribe_with_language(
        self, audio: AudioChunk, candidates: Sequence[str] | None, forced: str | None = None
    ) -> tuple[Transcript, LanguageGuess]:
        """Identify the language among `candidates` and transcribe, from one encoder pass.

        The guess is always made (so `auto` mode can notice a caller switching language); the decode
        runs in `forced` when given, else in the guessed language. The guess's `compute_ms` is what
        identification added on top of transcription (one decoder step)."""
        return await run_model(self._transcribe_blocking, _samples(audio), candidates, forced, True)

    async def identify_language(self, audio: AudioChunk, candidates: Sequence[str] | None) -> LanguageGuess:
        """Only the language. The encoder output stays cached, so transcribing the same audio next
        does not encode it again."""
        return await run_model(self._identify_blocking, _samples(audio), candidates)

    async def warm_up(self) -> None:
        await self.transcribe(
            AudioChunk.silence(1.0, WHISPER_RATE), language=None if self.multilingual else "en"
        )
        if self.multilingual:
            await run_model(self._foreign_script_ids)

    # ------------------------------------------------------------ blocking work

    def _identify_blocking(
        self, samples: np.ndarray[Any, Any], candidates: Sequence[str] | None
    ) -> LanguageGuess:
        started = time.perf_counter()
        if not self.multilingual:
            return LanguageGuess("en", 1.0, {"en": 1.0}, compute_ms=(time.perf_counter() - started) * 1000.0)
        with self._lock:
            probabilities = self._language_probabilities(self._window(samples))
        return restrict_to_candidates(probabilities, candidates, (time.perf_counter() - started) * 1000.0)

    def _transcribe_blocking(
        self,
        samples: np.ndarray[Any, Any],
        candidates: Sequence[str] | None,
        forced: str | None,
        identify: bool,
    ) -> tuple[Transcript, LanguageGuess]:
        started = time.perf_counter()
        lid_ms = 0.0
        with self._lock:
            window = self._window(samples)
            if self.multilingual and identify:
                lid_started = time.perf_counter()
                guess = restrict_to_candidates(self._language_probabilities(window), candidates)
                lid_ms = (time.perf_counter() - lid_started) * 1000.0
            else:
                language = forced or "en"
                guess = LanguageGuess(language, 1.0, {language: 1.0})
            language = forced or guess.language
            if len(samples) > WINDOW_SAMPLES:
                text = self._transcribe_long(samples, language)
            else:
                text = self._decode_steered(window, language).text
                if window.fitted and looks_cut_short(text, samples):
                    text = self._decode_on_full_window(samples, language, text)
        transcript = Transcript(
            text=drop_repetition_loops(text),
            language=language,
            language_probability=1.0 if forced else guess.probability,
            compute_ms=(time.perf_counter() - started) * 1000.0,
        )
        guess = LanguageGuess(guess.language, guess.probability, guess.probabilities, compute_ms=lid_ms)
        return transcript, guess

    def _decode_on_full_window(self, samples: np.ndarray[Any, Any], language: str, fitted_text: str) -> str:
        self.stats.full_window_redecodes += 1
        text = self._decode_steered(self._window(samples, full=True), language).text
        log.info("fitted window heard %r; the full window %r", fitted_text, text)
        return text if len(text.split()) > len(fitted_text.split()) else fitted_text

    def _window(self, samples: np.ndarray[Any, Any], full: bool = False) -> _Window:
        """The encoder output of the first 30 s, reused when the same audio comes back (identify,
        then transcribe; or a re-decode)."""
        key = hashlib.blake2b(samples.tobytes() + bytes([full]), digest_size=16).digest()
        cached = self._last_window
        if cached is not None and cached.key == key:
            return cached
        from faster_whisper.audio import pad_or_trim

        extractor = self._model.feature_extractor
        samples = samples[:WINDOW_SAMPLES]
        fitted = max(
            samples.size + FIT_PAD_SAMPLES, FIT_MIN_WINDOW_SAMPLES, FIT_WINDOW_PER_SPEECH * samples.size
        )
        fit = self._fit_window and not full and fitted < WINDOW_SAMPLES
        if fit:
            # Pad with silent *audio*, not with zero features: whisper's log-mel scale is relative to
            # the loudest frame, and zeros there are not silence (the model then hallucinates).
            pad = fitted - samples.size
            padded = np.concatenate([samples, np.zeros(pad, samples.dtype)])
            features = extractor(padded)
            # the encoder halves the frame rate with a stride-2 convolution: keep the length even
            segment = np.ascontiguousarray(features[:, : (features.shape[-1] - 1) // 2 * 2])
        else:
            features = extractor(samples)
            content_frames = min(features.shape[-1] - 1, extractor.nb_max_frames)
            segment = pad_or_trim(features[:, :content_frames], extractor.nb_max_frames)
        window = _Window(key, self._model.encode(segment), fitted=fit)
        self.stats.encodes += 1
        self._last_window = window
        return window

    def _language_probabilities(self, window: _Window) -> dict[str, float]:
        if window.language_probabilities is None:
            ranked = self._model.model.detect_language(window.encoder_output)[0]
            window.language_probabilities = {token[2:-2]: float(p) for token, p in ranked}
        return window.language_probabilities

    def _decode_steered(self, window: _Window, language: str) -> _Decoded:
        prompt = self._prompts.get(language)
        decoded = self._decode(window, language, prompt, devanagari_only=False)
        self.stats.decodes += 1
        # Mostly not Devanagari: Urdu script or romanised. A Latin loanword ("ATM") alone is fine.
        if writes_in(language, "devanagari") and decoded.text and devanagari_share(decoded.text) < 0.5:
            log.info("whisper wrote %s in another script (%r); decoding it again", language, decoded.text)
            self.stats.redecodes += 1
            counts = self.stats.redecodes_by_language
            counts[language] = counts.get(language, 0) + 1
            # stronger steering: the built-in Devanagari prompt even if steering was turned off
            decoded = self._decode(window, language, prompt or default_stt_prompts().get(language), True)
        return decoded

    def _decode(self, window: _Window, language: str, prompt: str | None, devanagari_only: bool) -> _Decoded:
        tokenizer = self._tokenizer(language)
        previous = tokenizer.encode(" " + prompt.strip()) if prompt else []
        tokens = self._model.get_prompt(tokenizer, previous, without_timestamps=True)
        suppress = self._suppressed(language)
        if devanagari_only:
            suppress = (*suppress, *self._foreign_script_ids())
        result = self._model.model.generate(
            window.encoder_output,
            [tokens],
            beam_size=self._beam_size,
            max_length=len(tokens) + self._max_new_tokens,
            no_repeat_ngram_size=self._no_repeat_ngram_size,
            repetition_penalty=self._repetition_penalty,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=list(suppress),
        )[0]
        ids = result.sequences_ids[0]
        avg_logprob = float(result.scores[0]) * len(ids) / (len(ids) + 1)
        no_speech = float(result.no_speech_prob)
        # faster-whisper's silence rule: the model says "no speech" and is not confident in its words.
        if no_speech > NO_SPEECH_THRESHOLD and avg_logprob < LOG_PROB_THRESHOLD:
            return _Decoded("", avg_logprob, no_speech)
        return _Decoded(tokenizer.decode(ids).strip(), avg_logprob, no_speech)

    def _transcribe_long(self, samples: np.ndarray[Any, Any], language: str) -> str:
        segments, _ = self._model.transcribe(
            samples,
            language=language,
            beam_size=self._beam_size,
            temperature=0.0,
            without_timestamps=True,
            condition_on_previous_text=False,
            initial_prompt=self._prompts.get(language),
            vad_filter=False,
            max_new_tokens=self._max_new_tokens,
        )
        # segments is lazy: the decoding happens while we iterate, inside the caller's lock.
        return " ".join(seg.text.strip() for seg in segments).strip()

    def _tokenizer(self, language: str) -> Any:
        tokenizer = self._tokenizers.get(language)
        if tokenizer is None:
            from faster_whisper.tokenizer import Tokenizer

            tokenizer = Tokenizer(
                self._model.hf_tokenizer,
                self.multilingual,
                task="transcribe",
                language=language if self.multilingual else None,
            )
            self._tokenizers[language] = tokenizer
        return tokenizer

    def _suppressed(self, language: str) -> tuple[int, ...]:
        suppress = self._suppress.get(language)
        if suppress is None:
            from faster_whisper.transcribe import get_suppressed_tokens

            suppress = tuple(get_suppressed_tokens(self._tokenizer(language), [-1]) or ())
            self._suppress[language] = suppress
        return suppress

    def _foreign_script_ids(self) -> list[int]:
        if self._foreign_ids is None:
            self._foreign_ids = foreign_script_token_ids(self._model.hf_tokenizer.get_vocab())
        return self._foreign_ids


def looks_cut_short(text: str, samples: np.ndarray[Any, Any]) -> bool:
    """Too few words for the sound: a decoder that stopped at the first sentence's full stop."""
    chunk = AudioChunk.from_float32(samples, WHISPER_RATE)
    start, end = speech_start_s(chunk), speech_end_s(chunk)
    if start is None or end is None or end - start < CUT_SHORT_MIN_SPAN_S:
        return False
    return len(text.split()) < CUT_SHORT_WORDS_PER_S * (end - start)


def _samples(audio: AudioChunk) -> np.ndarray[Any, Any]:
    return resample(audio, WHISPER_RATE).to_float32()
