"""The offline store role: full history of every feature group, with time travel."""
