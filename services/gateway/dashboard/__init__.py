"""The officials' dashboard: sign-in sessions, the page, and its scripts and styles."""
