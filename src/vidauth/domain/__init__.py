"""Plain domain types below every layer that uses them: the store, OAuth, uploads, profiles."""
