"""Tools around the program, never imported by it: the offline engine, the plan, the
recommender, the preflight and the release."""
