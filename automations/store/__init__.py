"""Every hand-written SQL statement, one module per group of tables; each says why it is not the ORM."""
