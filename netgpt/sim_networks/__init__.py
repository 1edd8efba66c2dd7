"""Topologies, the digital twin, the emulated network and its device agents."""
