"""No tables. The module exists because Django sends the migrate signals only to apps that
have one, and ops/apps.py grants the app role after a migration through them."""
