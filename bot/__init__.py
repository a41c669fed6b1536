"""The Telegram bot: a clothing photo in, an album of the most similar catalogue products out."""
