"""Authentication and authorisation: API keys, OAuth2 tokens, external issuers, scopes."""
