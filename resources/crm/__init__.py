"""CRM REST loaders: HubSpot, Salesforce and a generic JSON endpoint, with diff-based pushes."""
