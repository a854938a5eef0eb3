"""Registry: the system of record for firms, institutions, products and applications."""
