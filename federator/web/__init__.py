"""The web pages: the GOV.UK Design System over the same services as the API.

- ``blueprint``: the page blueprint class (GOV.UK template loaders, strict
  Jinja names), role-aware navigation, HTML error pages, ``render_page``.
- ``assets``: govuk-frontend (from ``node_modules``) and our static files.
- ``forms``: the lookup form and the pure mapping form <-> API payload.
- ``lookups``: the practitioner's pages (form, progress stream, results,
  recent lookups).
- ``recent``: the practitioner's own lookups, read from the audit trail.
"""
