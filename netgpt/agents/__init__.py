"""The langgraph agent graph that applies, verifies and keeps intents (issue 3)."""
