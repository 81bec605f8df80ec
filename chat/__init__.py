"""Chat: conversations, messages, the app shell, the consumers and the JSON API."""
