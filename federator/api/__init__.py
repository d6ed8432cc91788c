"""The JSON API (flask-smorest): a face over the services, holding no rules."""
