"""TikTok's request budget, shared by every thread, process and machine, and where it is stored."""
