"""Telemetry: SNMP polling, counters to rates, the store, views for models and the UI."""
