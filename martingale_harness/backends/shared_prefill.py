"""Several completions of one prompt from one prefill (the local backend's ``num_choices``, training's K samples).

``generate(num_return_sequences=n)`` repeats each prompt ``n`` times before the prefill, so a long
prompt's keys and values are computed ``n`` times. :func:`generate_shared_prefill` computes them once and
repeats the cache instead; decoding then runs on the same rows in the same order, so for the same random
draws the completions are those separate prefills give (up to floating-point ties).
"""

from __future__ import annotations

from typing import Any

import torch


def generate_shared_prefill(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, n: int,
                            **generate_kwargs: Any) -> Any:
    """``generate`` of ``n`` completions per (left-padded) prompt, the prompts' prefill computed once.

    The prompt minus its last token goes through the model once; its cache is repeated ``n`` times per row
    (``repeat_interleave``, the row order ``num_return_sequences`` uses) and ``generate`` continues from it
    with the full prompt, so it computes only the last prompt token and the new ones. Positions follow the
    attention mask, as ``generate``'s own for left padding. Returns what ``generate`` returns.
    """
    from transformers import DynamicCache

    head, head_mask = input_ids[:, :-1], attention_mask[:, :-1]
    positions = (head_mask.long().cumsum(-1) - 1).masked_fill(head_mask == 0, 1)  # as generate's own
    cache = DynamicCache()
    # logits of the last position only: over a large vocabulary those of the whole prompt would dwarf the cache
    model(input_ids=head, attention_mask=head_mask, position_ids=positions, past_key_values=cache, use_cache=True,
          logits_to_keep=1)
    cache.batch_repeat_interleave(n)
    return model.generate(input_ids=input_ids.repeat_interleave(n, dim=0),
                          attention_mask=attention_mask.repeat_interleave(n, dim=0),
                          past_key_values=cache, **generate_kwargs)
