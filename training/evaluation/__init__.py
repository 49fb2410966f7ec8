"""Evaluation of StickerBot's replies with the STICKERCONV paper's metrics.

`text_metrics` (Table 1), `multimodal` (Table 2: sticker frequency, MM-Relevance,
f-MMr), `judge` (Table 3: LLM-judged empathy, consistency and rank), `human` (the
paper's human evaluation), `report` (JSON, Markdown and plots) and `run` (what
`stickerbot evaluate` calls).
"""
