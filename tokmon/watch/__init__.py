"""`tokmon watch`: the live terminal dashboard (Textual UI over a pure view-model)."""
