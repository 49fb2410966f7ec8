"""Emotion understanding: emoji lexicon and the MiniLM + logistic-regression classifier."""

from engine.emotion.classifier import EmotionClassifier, EmotionPrediction
from engine.emotion.lexicon import emoji_emotion, find_emoji

__all__ = ["EmotionClassifier", "EmotionPrediction", "emoji_emotion", "find_emoji"]
