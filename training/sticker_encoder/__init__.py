"""Training (`python -m training.sticker_encoder.train`) and scoring of the cpu-small
sticker encoder, whose model and committed weights are engine.pegs.sticker_encoder."""
