"""Converters from other gateways' configurations (``stellwerk import-litellm``)."""
