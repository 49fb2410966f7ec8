"""The emotion classifier's data (data/train.jsonl, data/heldout.jsonl), its training
(`python -m training.emotion.train`) and its held-out evaluation
(`python -m training.emotion.evaluate`); the classifier itself is engine.emotion."""
