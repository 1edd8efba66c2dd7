"""NetGPT: AI-native, intent-based network management and orchestration."""

__version__ = "0.1.0"
