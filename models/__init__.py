"""SQLModel tables, the database engine, and the SOP spec with its loader."""
