"""The settings training reads: the engine's (models, and the simulator's and judge's LLM
backend) and storage's (evaluations read transcripts).

A group of the layered settings (see engine/settings.py); the top-level
`settings.Settings` composes it with the others.
"""

from __future__ import annotations

from engine.settings import BackendSettings
from storage.settings import StorageSettings


class TrainingSettings(BackendSettings, StorageSettings):
    """Training adds no settings of its own: its paths and models are the engine's."""
