"""Catalogues into indexes: a folder with its styles.csv or a product feed, embedded with checkpoints and
published to a store; sharded builds; syncs."""
