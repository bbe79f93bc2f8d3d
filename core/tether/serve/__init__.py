"""`tether serve`: Tether as a team service. Passes run one at a time on a runner thread (on
a schedule, and shortly after a webhook says an item changed); an ASGI app answers health,
readiness, Prometheus metrics and the trackers' webhooks."""
