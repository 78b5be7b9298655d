"""BERT's masked-LM model with the decoder run on the masked positions only.

    model = SparseBertForMaskedLM(BertConfig(...))
    model(input_ids, attention_mask, labels=labels).loss   # logits: one row per position labelled != -100

HF `BertForMaskedLM` projects every position onto the vocabulary, including the ~85% that carry no
label; at H=128 with an 8k vocabulary that projection costs more than a 4-layer encoder. Cramming
(Geiping & Goldstein 2023) and ModernBERT's `sparse_prediction` decode only the labelled positions.
Hand-written because BertForMaskedLM has no such option, and it is a subclass so that the weights,
the config and every downstream loader stay BertForMaskedLM's (the saved folder names that class).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import BertForMaskedLM
from transformers.modeling_outputs import MaskedLMOutput


class SparseBertForMaskedLM(BertForMaskedLM):
    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> MaskedLMOutput:
        hidden = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
        if labels is None:  # nothing to pick: every position, as BertForMaskedLM
            return MaskedLMOutput(logits=self.cls(hidden))
        picked = labels != -100
        logits = self.cls(hidden[picked])
        return MaskedLMOutput(loss=F.cross_entropy(logits.float(), labels[picked]), logits=logits)

    def save_pretrained(self, save_directory, **kwargs):
        super().save_pretrained(save_directory, **kwargs)
        # super() names this class in config.json; name the stock class, whose weights these are
        self.config.architectures = ["BertForMaskedLM"]
        self.config.save_pretrained(save_directory)


def masking_collator(p, tokenizer):
    """The masked-LM objective as a collator (pretrain.mlm_probability, pretrain.mask_replace_prob; the
    rest of the selected tokens split evenly between random tokens and unchanged)."""
    from transformers import DataCollatorForLanguageModeling

    return DataCollatorForLanguageModeling(tokenizer, mlm_probability=p.mlm_probability,
                                           mask_replace_prob=p.mask_replace_prob,
                                           random_replace_prob=(1 - p.mask_replace_prob) / 2)
