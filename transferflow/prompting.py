"""Classification with a causal language model (gpt family) by prompting: no classifier head.

    clf = load_classifier("artifacts/finetune/prompt/model")     # kind `prompt`
    clf.predict(["a gripping , funny film"])                     # -> array([1])

A text is put into the template (`Review: {text}\\nSentiment:`), after k solved demonstrations, and
each label's word (the verbalizer: `negative`, `positive`) is scored by its log-likelihood as the
continuation; the most likely word's label wins. Zero- and few-shot prompting use the pretrained
decoder as is; SFT trains the decoder on the same prompts, so it is served the same way.

Contextual calibration (Zhao et al., 2021, "Calibrate Before Use"): a small LM tends to prefer one label
word whatever the text. Its label-word probabilities after content-free inputs (`N/A`, ``, `[MASK]`, in
the same template and demonstrations) measure that bias; dividing by them (subtracting their logs) is
what the paper's diagonal W with b = 0 does. The offsets are stored with the model, so serving applies
them too.

Hand-written: transformers' zero-shot pipeline is NLI-based (an encoder with an entailment head), and
no library scores verbalizers with a decoder. The sums run over the label word's tokens, so multi-token
words work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from transferflow.files import write_json

KIND = "prompt"


def render(template: str, text: str, word: str | None = None) -> str:
    """The template filled with a text, and with its answer word when it is a demonstration."""
    prompt = template.format(text=text)
    return prompt if word is None else f"{prompt} {word}"


def few_shot_prefix(template: str, demonstrations: Sequence[tuple[str, str]]) -> str:
    """Solved examples, each followed by a blank line, to put before the query."""
    return "".join(render(template, text, word) + "\n\n" for text, word in demonstrations)


def draw_demonstrations(texts: Sequence[str], labels: Sequence[int], k: int, seed: int) -> list[tuple[str, int]]:
    """k (text, label id) pairs from the training split, drawn with a seed, in drawn order."""
    if k > len(texts):
        raise ValueError(f"{k} demonstrations asked for, but the training split has {len(texts)} rows")
    rows = np.random.default_rng(seed).choice(len(texts), size=k, replace=False)
    return [(texts[i], int(labels[i])) for i in rows]


def encode_answer(tokenizer, context: str, word: str, max_positions: int) -> tuple[list[int], list[int]]:
    """(context ids, answer ids): the answer is ` word`, tokenized apart so its tokens do not depend on
    the context. A context longer than the model's positions loses its start (the oldest demonstrations),
    never the query next to the answer."""
    answer = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
    context_ids = tokenizer(context, add_special_tokens=False, verbose=False)["input_ids"]  # cut below
    return context_ids[-(max_positions - len(answer)):], answer


CONTENT_FREE = ("N/A", "", "[MASK]")
"""Zhao et al.'s content-free inputs: texts that should favour no label."""


def calibration_offsets(model, tokenizer, prefix: str, template: str, words: Sequence[str],
                        content_free: Sequence[str] = CONTENT_FREE, batch_size: int = 32) -> np.ndarray:
    """log of the label words' probabilities (normalized over the words, averaged over the content-free
    inputs) after the given demonstrations: what a prompt's scores are divided by to calibrate them."""
    contexts = [prefix + render(template, text) for text in content_free]
    scores = label_log_likelihoods(model, tokenizer, contexts, words, batch_size)
    probabilities = np.exp(scores - np.logaddexp.reduce(scores, axis=1, keepdims=True))
    return np.log(probabilities.mean(axis=0))


def label_log_likelihoods(model, tokenizer, contexts: Sequence[str], words: Sequence[str],
                          batch_size: int = 32) -> np.ndarray:
    """log P(word | context) for every context (rows) and label word (columns)."""
    import torch

    positions = model.config.max_position_embeddings
    device = next(model.parameters(), torch.empty(0)).device  # where the model is, also while it trains
    pairs = [encode_answer(tokenizer, c, w, positions) for c in contexts for w in words]
    scores = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            width = max(len(c) + len(a) for c, a in chunk)
            ids = torch.full((len(chunk), width), tokenizer.pad_token_id)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, (c, a) in enumerate(chunk):  # right padding: real tokens keep positions 0..n-1
                ids[row, :len(c) + len(a)] = torch.tensor(c + a)
                mask[row, :len(c) + len(a)] = 1
            logprobs = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().log_softmax(-1)
            for row, (c, a) in enumerate(chunk):
                # the token at position t is predicted by the logits at t - 1
                at = torch.arange(len(c) - 1, len(c) + len(a) - 1, device=device)
                scores.append(logprobs[row, at, torch.tensor(a, device=device)].sum().item())
    return np.array(scores).reshape(len(contexts), len(words))


class PromptClassifier:
    """kind `prompt`: a causal LM, a template, label words, the demonstrations to prepend and, when
    calibrated, the log-probabilities to subtract from the scores. Built from a model in memory (how
    fine-tuning scores its checkpoints) or read from a folder (`from_folder`: decoder/ and the manifest)."""

    def __init__(self, model, tokenizer, template: str, words: Sequence[str], label_names: Sequence[str],
                 demonstrations: Sequence[tuple[str, int]] = (), offsets: Sequence[float] | None = None,
                 batch_size: int = 64):
        self.model, self.tokenizer = model, tokenizer
        self.template, self.words, self.label_names = template, list(words), list(label_names)
        self.prefix = few_shot_prefix(template, [(t, self.words[y]) for t, y in demonstrations])
        self.offsets = np.array(offsets if offsets is not None else np.zeros(len(self.words)))
        self.batch_size = batch_size

    @classmethod
    def from_folder(cls, folder: Path, manifest: dict, batch_size: int = 64) -> PromptClassifier:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        return cls(AutoModelForCausalLM.from_pretrained(folder / "decoder").eval(),
                   AutoTokenizer.from_pretrained(folder / "decoder"), manifest["template"], manifest["label_words"],
                   manifest["label_names"], manifest["demonstrations"], manifest.get("calibration"), batch_size)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        contexts = [self.prefix + render(self.template, t) for t in texts]
        return label_log_likelihoods(self.model, self.tokenizer, contexts, self.words, self.batch_size) - self.offsets

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros(0, dtype=np.int64)
        return self.scores(texts).argmax(axis=1)


def save_prompt_classifier(folder: Path, model, tokenizer, template: str, label_words: Sequence[str],
                           label_names: Sequence[str], demonstrations: Sequence[tuple[str, int]],
                           calibration: Sequence[float] | None = None) -> None:
    """Write a kind `prompt` model folder that transferflow.models.load_classifier reads; `calibration`
    is calibration_offsets' answer for these demonstrations, or None for raw scores."""
    model.save_pretrained(folder / "decoder")
    tokenizer.save_pretrained(folder / "decoder")
    write_json(folder / "classifier.json", {
        "kind": KIND, "template": template, "label_words": list(label_words), "label_names": list(label_names),
        "demonstrations": [[t, int(y)] for t, y in demonstrations],
        "calibration": None if calibration is None else [float(x) for x in calibration],
    })


def sft_features(tokenizer, template: str, words: Sequence[str], max_positions: int):
    """Dataset.map function for supervised fine-tuning: prompt + answer word + end of text, with the loss
    on the answer only (the prompt's labels are -100), so training teaches what scoring asks."""
    def encode(batch):
        out = {"input_ids": [], "attention_mask": [], "labels": []}
        for text, label in zip(batch["text"], batch["label"]):
            context, answer = encode_answer(tokenizer, render(template, text), words[label], max_positions - 1)
            answer = answer + [tokenizer.eos_token_id]
            out["input_ids"].append(context + answer)
            out["attention_mask"].append([1] * (len(context) + len(answer)))
            out["labels"].append([-100] * len(context) + answer)
        return out

    return encode
