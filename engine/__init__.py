"""The model side of StickerBot: types, perception, stickers, LLM, the responder.

Nothing here imports `bots`, `tasks`, `storage` or anything above them.
"""
