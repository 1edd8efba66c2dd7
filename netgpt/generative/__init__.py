"""The generative service: NetGPT's own workload (edge prompt completion + cloud answer)."""
