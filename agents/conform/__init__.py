"""`qstrata conform`: a conformance kit for any device's management interface.

Checks are data (`model.Check`: an id, the RFC or ETSI clause, what is sent, what is expected,
the capabilities it needs); a handful of generic runners execute them (`netconf_runner`,
`gnmi_runner`) and a few named steps do what one request/reply cannot (confirmed-commit timing,
subscribe cadence, a QKD link's life cycle). Results carry evidence (what was sent and received)
and are written as JSON, self-contained HTML and a console table (`report`).
"""
