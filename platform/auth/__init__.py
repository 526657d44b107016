"""Signing in: passwords, lock-out, single-use links and the second factor.

Everything a person does about their own sign-in lives here; what a
professional does to someone else's account lives in ``lotse.platform.accounts``.
"""
