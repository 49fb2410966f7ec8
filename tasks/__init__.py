"""The Celery app and its tasks; the embedded default runs the same code in-process."""
