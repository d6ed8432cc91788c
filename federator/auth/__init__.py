"""Who is asking: bearer tokens from the identity provider, roles, access control."""
