"""T5's span-corruption objective as a data collator.

    collator = SpanCorruptionCollator(tokenizer, noise_density=0.15, mean_span_length=3.0)
    batch = collator([{"input_ids": [...]}, ...])   # input_ids, attention_mask, labels

Each example loses about `noise_density` of its tokens in spans of mean length `mean_span_length`;
every span becomes one sentinel (<extra_id_0>, <extra_id_1>, ...) in the input, and the target lists
each sentinel followed by the tokens it hid, then </s>:

    input:  thank you <extra_id_0> me to your party <extra_id_1> week </s>
    target: <extra_id_0> for inviting <extra_id_1> last </s>

Hand-written: transformers ships this objective only inside a Flax example script
(examples/flax/language-modeling/run_t5_mlm_flax.py, `DataCollatorForT5MLM`), not as a library class.
The span layout follows that script (`random_spans_noise_mask`); randomness comes from torch, so
Trainer's seed and `torch.random.fork_rng` make it reproducible.
"""

from __future__ import annotations

import torch


def _random_segmentation(num_items: int, num_segments: int) -> torch.Tensor:
    """Lengths of `num_segments` non-empty segments that add up to `num_items`, uniformly at random."""
    dividers = torch.randperm(num_items - 1)[: num_segments - 1] + 1
    edges = torch.cat([torch.tensor([0]), dividers.sort().values, torch.tensor([num_items])])
    return edges.diff()


def noise_mask(length: int, noise_density: float, mean_span_length: float) -> torch.Tensor:
    """Boolean mask of the tokens to hide, in alternating kept/hidden spans that start with a kept one."""
    num_noise = min(max(round(length * noise_density), 1), length - 1)
    num_spans = max(min(round(num_noise / mean_span_length), num_noise, length - num_noise), 1)
    noise = _random_segmentation(num_noise, num_spans)
    kept = _random_segmentation(length - num_noise, num_spans)
    spans = torch.stack([kept, noise], dim=1).flatten()  # kept, noise, kept, noise, ...
    flags = torch.arange(len(spans)) % 2 == 1
    return torch.repeat_interleave(flags, spans)


class SpanCorruptionCollator:
    def __init__(self, tokenizer, noise_density: float = 0.15, mean_span_length: float = 3.0):
        self.tokenizer = tokenizer
        self.noise_density, self.mean_span_length = noise_density, mean_span_length
        # Found by name: T5 tokenizers call them <extra_id_N> (the attribute listing them was renamed
        # across transformers versions).
        vocab = tokenizer.get_vocab()
        self.sentinels = [vocab[f"<extra_id_{i}>"] for i in range(1000) if f"<extra_id_{i}>" in vocab]
        if not self.sentinels:
            raise ValueError("span corruption needs a tokenizer with <extra_id_N> sentinel tokens (family t5)")
        self.eos = tokenizer.eos_token_id

    def corrupt(self, ids: list[int]) -> tuple[list[int], list[int]]:
        """(input ids, target ids) of one example, both ending in </s>."""
        if len(ids) < 2:  # nothing to hide and keep: predict the end of text
            return ids + [self.eos], [self.eos]
        mask = noise_mask(len(ids), self.noise_density, self.mean_span_length).tolist()
        inputs, targets, span = [], [], -1
        for i, (token, hidden) in enumerate(zip(ids, mask)):
            starts = hidden and (i == 0 or not mask[i - 1])
            span += starts
            if span >= len(self.sentinels):
                raise ValueError(f"{span + 1} corrupted spans, but the tokenizer has {len(self.sentinels)} sentinels")
            if hidden:
                targets += [self.sentinels[span], token] if starts else [token]
                inputs += [self.sentinels[span]] if starts else []
            else:
                inputs.append(token)
        return inputs + [self.eos], targets + [self.eos]

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        pairs = [self.corrupt([t for t in e["input_ids"] if t != self.eos]) for e in examples]
        width_in = max(len(i) for i, _ in pairs)
        width_out = max(len(t) for _, t in pairs)
        pad = self.tokenizer.pad_token_id
        return {
            "input_ids": torch.tensor([i + [pad] * (width_in - len(i)) for i, _ in pairs]),
            "attention_mask": torch.tensor([[1] * len(i) + [0] * (width_in - len(i)) for i, _ in pairs]),
            # -100: padding is not a target; T5 builds decoder inputs from labels (shifted, -100 -> pad)
            "labels": torch.tensor([t + [-100] * (width_out - len(t)) for _, t in pairs]),
        }
