"""Conversations: live chat between clients and professionals, with attachments and data-leak deletion."""
