//! Syslog output (`--syslog`).
