"""Guardrails no intent or model can bypass, and intent conflict detection."""
