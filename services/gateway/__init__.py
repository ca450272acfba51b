"""The dashboard gateway: serves the web front end and a JSON API over the gRPC services."""
