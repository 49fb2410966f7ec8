"""Agent4SC: the multi-agent simulator that writes STICKERCONV-style empathetic dialogues
with stickers (user and system agents, a manager agent, a sharded sticker tool)."""
