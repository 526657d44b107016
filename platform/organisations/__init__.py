"""Organisations and their settings, which flows and screens respect."""
