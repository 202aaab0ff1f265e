"""How well can a turn's intent be chosen without the model's free text? (docs/quality.md, routes)

Three choosers over `requests.txt` (the bank suite's first caller turns, labelled by hand):
- `label`: the model writes "[intent]" first, taught by labelled examples in its system prompt; the
  label is read from the logits of the labels' first tokens (a constrained intent-then-reply turn);
- `embed`: nearest neighbour of the model's mean-pooled embedding among `phrases.txt`;
- `ngram`: nearest neighbour on word and character n-grams (TF-IDF) among the same phrases.

    python scripts/intent_choice/measure.py label [qwen2.5-0.5b|qwen2.5-1.5b]
    python scripts/intent_choice/measure.py embed
    python scripts/intent_choice/measure.py ngram
"""

from __future__ import annotations

import collections
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent
LABELS = {
    "answer": "answer",
    "colleague": "colleague",
    "person": "person",
    "wrong": "wrong number",
    "bye": "goodbye",
}
EXAMPLES = [
    ("I lost my debit card.", "colleague"),
    ("What's the balance on my account?", "colleague"),
    ("Can I talk to someone?", "person"),
    ("Are you open on Saturday?", "answer"),
    ("Is this Luigi's Pizza?", "wrong"),
    ("What's the capital of France?", "wrong"),
    ("That's all, thanks. Bye!", "bye"),
    ("How long does a new card take?", "answer"),
]


def labelled(name: str) -> list[tuple[str, str]]:
    rows = [line.split(": ", 1) for line in (HERE / name).read_text().splitlines() if line.strip()]
    return [(label, text) for label, text in rows]


def load(model: str, **kwargs: Any) -> Any:
    from llama_cpp import Llama

    from voxline.engines.catalog import ModelCatalog
    from voxline.engines.llm_llamacpp import _model_params, extra_buffers_wanted

    path = ModelCatalog().resolve(model, "llm")
    with _model_params(extra_buffers_wanted()):
        return Llama(model_path=str(path), n_threads=2, n_threads_batch=2, verbose=False, **kwargs)


def by_label(model: str) -> Any:
    from voxline.agent.config import load_agent
    from voxline.conversation.prompt import agent_rules

    agent = load_agent(HERE.parents[1] / "examples/agents/bank.yaml")
    system = agent.persona.strip() + "\n\nRules:\n" + "\n".join("- " + r for r in agent_rules(agent))
    system += (
        "\n\nBefore each reply, write what the caller needs in brackets: [answer] a question you can answer "
        "from the facts above; [colleague] anything about their own account or card, or that needs something "
        "done; [person] they ask for a person; [wrong number] they wanted another business or something that "
        "is not banking; [goodbye] they are done.\n\nExamples:\n"
        + "\n".join(f"Caller: {c}\nYou: [{LABELS[label]}]" for c, label in EXAMPLES)
    )
    llm = load(model, n_ctx=2048)
    first = {k: llm.tokenize(v.encode(), add_bos=False, special=True)[0] for k, v in LABELS.items()}

    def choose(text: str) -> str:
        prompt = (
            f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{text}<|im_end|>\n"
            "<|im_start|>assistant\n["
        )
        tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        common = 0
        for a, b in zip(llm._input_ids.tolist(), tokens, strict=False):
            if a != b:
                break
            common += 1
        llm.n_tokens = common  # the system prompt stays evaluated between turns
        llm.eval(tokens[common:])
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
        return max(first, key=lambda k: logits[first[k]])

    return choose


def by_embedding(model: str) -> Any:
    llm = load(model, embedding=True, n_ctx=512, pooling_type=1)

    def embed(text: str) -> np.ndarray:
        v = np.array(llm.embed(text), dtype=np.float32)
        return v / np.linalg.norm(v)

    phrases = labelled("phrases.txt")
    table = np.stack([embed(t) for _, t in phrases])

    def choose(text: str) -> str:
        scores = table @ embed(text)
        return phrases[int(np.argmax(scores))][0]

    return choose


def by_ngrams(_model: str) -> Any:
    stop = set(
        [
            "a",
            "an",
            "the",
            "i",
            "i'm",
            "i've",
            "my",
            "me",
            "you",
            "your",
            "is",
            "are",
            "was",
            "to",
            "of",
            "and",
            "in",
            "on",
            "for",
            "it",
            "this",
            "that",
            "do",
            "does",
            "can",
        ]
    )
    stop |= {"could", "would", "please", "hi", "hello", "what", "how", "when"}

    def features(text: str) -> collections.Counter[str]:
        words = [
            w[:-1] if w.endswith("s") else w for w in re.findall(r"[a-z']+", text.lower()) if w not in stop
        ]
        found: collections.Counter[str] = collections.Counter(words)
        for w in words:
            padded = f"#{w}#"
            for i in range(len(padded) - 3):
                found["c:" + padded[i : i + 4]] += 0.3
        return found

    phrases = labelled("phrases.txt")
    docs = [features(t) for _, t in phrases]
    df = collections.Counter(k for d in docs for k in d)

    def vector(f: collections.Counter[str]) -> dict[str, float]:
        v = {k: c * math.log((len(docs) + 1) / (df.get(k, 0) + 1)) for k, c in f.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {k: x / norm for k, x in v.items()}

    table = [vector(d) for d in docs]

    def choose(text: str) -> str:
        q = vector(features(text))
        scores = [sum(q[k] * d.get(k, 0.0) for k in q) for d in table]
        return phrases[int(np.argmax(scores))][0]

    return choose


def main() -> None:
    method = sys.argv[1] if len(sys.argv) > 1 else "label"
    model = sys.argv[2] if len(sys.argv) > 2 else "qwen2.5-0.5b"
    choose = {"label": by_label, "embed": by_embedding, "ngram": by_ngrams}[method](model)
    right, took = 0, []
    for expected, text in labelled("requests.txt"):
        started = time.perf_counter()
        got = choose(text)
        took.append(time.perf_counter() - started)
        right += got == expected
        print(f"{'ok' if got == expected else 'XX'} {expected:10} {got:10} {text}")
    print(f"{method} {model}: {right}/{len(took)} right; {1000 * float(np.median(took)):.0f} ms p50 per turn")


if __name__ == "__main__":
    main()
