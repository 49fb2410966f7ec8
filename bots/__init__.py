"""Platform adapters (web chat, Telegram, Discord) and shared reply rendering."""
