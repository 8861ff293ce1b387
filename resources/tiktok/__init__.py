"""Everything that talks to TikTok: OAuth, the Display API client, typed errors and models."""
