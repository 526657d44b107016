"""The append-only audit log (in the spirit of NEN 7513) and its views."""
