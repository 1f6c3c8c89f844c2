"""wsdiag check: pure static analysis of app sources (standard library only; --app is delegated to flaskapp)."""
