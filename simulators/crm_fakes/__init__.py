"""Fake HubSpot and Salesforce REST servers on 127.0.0.1 for the tests and the benchmark.

Written from /work/shared/docs/crm-apis.md section 3: batch caps, string-only HubSpot values,
multi-status and rate limits, Salesforce per-record results, array errors, 300 duplicates,
REQUEST_LIMIT_EXCEEDED and Sforce-Limit-Info. Each counts requests and exposes what it stored.
"""

from simulators.crm_fakes.hubspot import FakeHubSpot
from simulators.crm_fakes.salesforce import FakeSalesforce, SObjectSpec
from simulators.crm_fakes.server import CrmFake, RecordedRequest

__all__ = ["CrmFake", "FakeHubSpot", "FakeSalesforce", "RecordedRequest", "SObjectSpec"]
