"""Intents: the formal intent model, change sets and verdicts (parser and compiler to come)."""
