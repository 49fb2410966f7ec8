"""What the bot says about itself, the same on every platform."""

RESET_DONE = "Done: I've forgotten our conversation so far. Let's start fresh."
FORGET_ASK = ("This deletes your messages, the emotions I detected in them, and the stickers "
              "and pictures you sent me. It can't be undone. Delete everything?")
FORGET_DONE = ("Done: I deleted your messages, the emotions I detected and the {files} you "
               "sent me. I no longer remember anything about you.")
FORGET_CANCELLED = "Cancelled: nothing was deleted."
NOT_YOURS = "Only the person who asked can answer this."
STICKERS_ON = "Stickers are on: I'll add one to my answers when it fits."
STICKERS_OFF = "Stickers are off: I'll answer with text only."


def files_phrase(removed: int) -> str:
    """'3 files', '1 file', or 'files' when none were left to delete."""
    return f"{removed} file{'s' if removed != 1 else ''}" if removed else "files"
