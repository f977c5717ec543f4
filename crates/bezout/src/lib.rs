//! Bezout-style degree and zero counts for polynomial networks, and a numeric check of degenerate zero-error minima.
