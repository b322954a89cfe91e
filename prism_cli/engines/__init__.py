"""The wrapped model (in process or a server). Engines know nothing of moderation."""
