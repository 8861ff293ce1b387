"""Secrets never leak (issue 7): runs with canary values for every secret, then a scan of every
place a secret could end up (tests/secrets/scan.py, or `python -m tests.secrets.scan PATH...`).
"""
