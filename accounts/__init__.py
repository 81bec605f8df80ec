"""Accounts: users, profiles, sign-up and login, and (later) contacts, presence and blocking."""
