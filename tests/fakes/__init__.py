"""In-process fakes of external services, for tests that must cross a real wire."""
