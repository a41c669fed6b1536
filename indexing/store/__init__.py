"""Where the catalogue lives: the index folder's files, Milvus, the product table, and exact or approximate
search over the vectors."""
