"""Payload models, one module per producer."""
