"""Test helpers for lightbus_sync: a throwaway real redis-server and pytest support."""
