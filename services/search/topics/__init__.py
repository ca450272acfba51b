"""The TopicService: tenants' own topics, the tagging of their posts with them, and analysts' marks."""
