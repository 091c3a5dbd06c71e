"""The Textual explorer UI. Entry points: app.make_app (one factory) and app.run_app (the CLI)."""
