"""Outgoing mail and SMS: an outbox in the database, delivery with retries."""
