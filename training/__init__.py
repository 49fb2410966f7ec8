"""STICKERCONV data, the Agent4SC simulator, training stages and evaluation."""
