"""Settings and the database engine: what every other part of the service is configured and stored with."""
