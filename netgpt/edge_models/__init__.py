"""Small edge language models: traffic forecasting and intent inference (later issues)."""
