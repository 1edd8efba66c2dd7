"""Cloud LLM backends behind one interface (later issue)."""
