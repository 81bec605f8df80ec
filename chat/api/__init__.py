"""The JSON HTTP API (`/api/v1/`) and its WebSocket event stream (`/api/v1/stream`), for bots and integrations.

Both are doorways only: they authenticate a bearer token (`accounts.tokens`), call the same actions as the web
UI, and map the actions' domain errors to precise JSON errors (`chat.api.errors`).
"""
