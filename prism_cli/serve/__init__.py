"""`prism serve`: a moderating OpenAI-compatible proxy (DESIGN.md, the serve layer).

app.py holds the routes; requests.py reads what clients send, upstream.py talks to the model
server, relay.py runs StreamGate over a reply in a worker thread, moderation.py owns the gate,
the decision log and the OpenAI moderation shape. Nothing here is imported by the rest of prism,
and starlette, uvicorn and httpx are imported only when `prism serve` runs.
"""
