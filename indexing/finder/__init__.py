"""The item finder: what in a user's photo to search (surfaces, busy photos, people, screenshots), and how an
item is cut out like a packshot."""
