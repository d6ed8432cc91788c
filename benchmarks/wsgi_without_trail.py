"""For measurement only (``benchmarks/fanout.py --without-trail``): the broker with
its audit trail's ``append`` and ``enqueue`` (the lookup's own records) no-ops, to
show what the rest of it costs. Never a way to run a broker: its lookups are not
audited."""

from federator import create_app

app = create_app()
app.extensions["federator"].trail.append = lambda event, **fields: {
    "seq": 0, "event": event, **fields}
app.extensions["federator"].trail.enqueue = lambda event, **fields: None
