"""Fixtures for the CRM tests (see tests/crm/fixtures.py)."""

from tests.crm.fixtures import _no_crm_settings, clock, hubspot, salesforce, sleeps

__all__ = ["_no_crm_settings", "clock", "hubspot", "salesforce", "sleeps"]
