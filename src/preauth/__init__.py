"""preauth: loan pre-authorization decisions."""
