"""What the tests and the benchmarks both stand up: a fake Bot API, a shop's feed server, Milvus and PostgreSQL
on loopback, a bot in a thread, and the photos they send (drawn products, composites, screenshots)."""
