"""HTTP plumbing shared by every API group: responses, problems, middleware, the auth guard."""
