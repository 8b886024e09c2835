"""The store: job records, metrics, events, artifacts and API keys, shared by `api` and `workers`. No torch."""
