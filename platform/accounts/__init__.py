"""Accounts of every role: sign-in, welcome and reset links, two-factor, (de)activation."""
